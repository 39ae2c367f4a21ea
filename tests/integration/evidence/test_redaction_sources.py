# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 13 item 5: secrets reach the bundle. A real ansible-playbook run with secrets planted in
every variable source and in every shape the issue names; stdout, run.log, events.jsonl and
summary.json must hold none of them. Issue 22 item 10: secret sources whose names do not say
secret, and the shapes the first redaction missed (every file of the bundle checked)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import urllib.parse

BIN = os.path.dirname(sys.executable)

VAULTED = "VaultedBlob-8841xyz"
GROUP_TOKEN = "GroupVarTok-5521abc"
HOST_PASSWORD = "HostVarPw-3390qq"
FILE_SECRET = "Var/File+Secret=7710"
ROLE_SECRETS = ["RoleVarTok-6620zz", "RoleDefaultPw-1187"]
HOOK = ["HookUrlPw-4471", "HookFrag-9912abcd", "Zq8vN2kR5tW7yB4mC6pX1jL3"]
HEX_NUMERIC = ["5f2b9c0e7d41a8f36b1e0c9d2a7f4e81", "123456789", "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"]
AWS = ["9drTJvcXLB89EXAMPLEKEYwJalrXUtnFEMIK7MDE", "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD6EXAMPLETOKENvalue123",
       "u7TsVb2Qw9EXAMPLEKEYqq1Zz8Yy4Xx6Ww0Vv3Uu5", "FwoGZXIvYXdzEBYaDHEXAMPLEtablesessionTOKEN0123456789"]
SPLIT = [HOST_PASSWORD[:8] + "\n" + HOST_PASSWORD[8:], HOST_PASSWORD[:8] + "\\n" + HOST_PASSWORD[8:]]


def planted_inventory(tmp_path):
    inventory = tmp_path / "inv"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "host_vars").mkdir()
    (inventory / "hosts.yml").write_text("all:\n  children:\n    enclaves:\n      hosts:\n        enclave-a: {}\n")
    password_file = tmp_path / "vault-pass"
    password_file.write_text("vault-test-password\n")
    vaulted = subprocess.run([os.path.join(BIN, "ansible-vault"), "encrypt_string", "--vault-password-file", str(password_file),
                              VAULTED, "--name", "enclave_blob"], capture_output=True, text=True, check=True).stdout
    (inventory / "group_vars" / "all" / "vault.yml").write_text("---\n" + vaulted)
    (inventory / "group_vars" / "enclaves.yml").write_text(f"---\nenclave_api_token: {GROUP_TOKEN}\n")
    (inventory / "host_vars" / "localhost.yml").write_text(f"---\nhost_db_password: {HOST_PASSWORD}\n")
    vars_file = tmp_path / "secrets.yml"
    vars_file.write_text(f"---\nvf_secret_key: \"{FILE_SECRET}\"\n")
    return inventory, password_file, vars_file


def test_secrets_of_every_variable_source_and_shape_never_reach_bundle_or_stdout(run_playbook, tmp_path):
    inventory, password_file, vars_file = planted_inventory(tmp_path)
    result = run_playbook("redaction_sources.yml", "-i", str(inventory), "--vault-password-file", str(password_file),
                          extra={"env": "staging", "sim_vars_file": str(vars_file)})
    assert result.rc == 0, result.stdout + result.stderr
    files = result.file_texts()
    assert {"run.log", "events.jsonl", "summary.json"} <= set(files)
    secrets = ([VAULTED, GROUP_TOKEN, HOST_PASSWORD, FILE_SECRET, urllib.parse.quote(FILE_SECRET, safe=""),
                urllib.parse.quote_plus(FILE_SECRET), urllib.parse.quote(FILE_SECRET)]
               + ROLE_SECRETS + HOOK + HEX_NUMERIC + AWS + SPLIT)
    places = {name: files[name] for name in ("run.log", "events.jsonl", "summary.json")}
    places["stdout"] = result.stdout + result.stderr
    for where, text in places.items():
        for secret in secrets:
            assert secret not in text, f"planted secret {secret!r} found in {where}"
    # The tasks did print them: what stands in their place is a mask, and the hook did fail.
    assert "[REDACTED:known_secret]" in files["run.log"]
    assert "Could not run the stage hook: it exited with code 3" in result.stdout
    for detector in ("password_assignment", "bearer_token", "aws_cli_text_secret", "aws_session_token", "aws_cli_credentials"):
        assert f"[REDACTED:{detector}]" in files["events.jsonl"], detector


# ---------------------------------------------------------------------------------- issue 22 item 10
ENV_PWD = "EnvPwd-7731qq"
GROUP_PASS = "GroupPass-4410xy"
HOST_KEY = "HostKey-8812zz"
WHOLE_VAULT = ["WholeVault-5530ab", "NestedVault-6640cd"]
LONG_TOKEN = "LongTok-" + "9fK2mQ7xR4vT8wB3nY6cZ1pL5sD0hJ" * 2
QUOTE_SECRET = 'Q"uote\\Secret-41'
COMPOSED = ["NoLogTok-8638zq", "EnvKw-Pass9922", GROUP_PASS.upper()]
HEADER = ["HdrTk77q", "Sh0rtPw9"]
HEX = [hashlib.sha256(text.encode()).hexdigest() for text in ("hex-1", "hex-2", "hex-3")]


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _b64_chunks(secret: str) -> set:
    """16-character pieces of the secret's base64 at every alignment (what must not survive)."""
    chunks = set()
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + secret.encode()).decode()[4:-4]
        chunks |= {encoded[i:i + 16] for i in range(0, len(encoded) - 16, 4)}
    return chunks


def test_secret_sources_without_secret_names_and_new_shapes_never_reach_bundle_or_stdout(run_playbook, tmp_path):
    inventory, password_file, dummy = planted_inventory(tmp_path)
    whole = inventory / "group_vars" / "all" / "vault_file.yml"
    whole.write_text(f"---\ndb_conn_string: {WHOLE_VAULT[0]}\nvault_file_settings:\n  inner: {WHOLE_VAULT[1]}\n")
    subprocess.run([os.path.join(BIN, "ansible-vault"), "encrypt", "--vault-password-file", str(password_file), str(whole)],
                   capture_output=True, check=True)
    assert whole.read_bytes().startswith(b"$ANSIBLE_VAULT;")
    (inventory / "group_vars" / "all" / "main.yml").write_text(f"---\ndb_pass: {GROUP_PASS}\n")
    (inventory / "host_vars" / "localhost.yml").write_text(
        f"---\ndeploy_key: {HOST_KEY}\nservice_api_token: {LONG_TOKEN}\nquote_secret: {json.dumps(QUOTE_SECRET)}\n")
    generated_file = tmp_path / "generated-password"
    result = run_playbook("redaction_secret_sources.yml", "-i", str(inventory), "--vault-password-file", str(password_file),
                          extra={"env": "staging", "generated_password_file": str(generated_file)},
                          env={"MYSQL_PWD": ENV_PWD})
    assert result.rc == 0, result.stdout + result.stderr
    generated = generated_file.read_text().split()[0]
    assert len(generated) == 24

    files = result.file_texts()
    assert {"run.log", "events.jsonl", "summary.json", "report.html"} <= set(files)
    places = dict(files, stdout=result.stdout + result.stderr)
    places["events (strings)"] = "\n".join(s for line in files["events.jsonl"].splitlines() for s in _strings(json.loads(line)))
    secrets = [ENV_PWD, GROUP_PASS, HOST_KEY, LONG_TOKEN, generated, QUOTE_SECRET, *WHOLE_VAULT, *COMPOSED, *HEADER, *HEX,
               json.dumps(QUOTE_SECRET)[1:-1], json.dumps(json.dumps(QUOTE_SECRET)[1:-1])[1:-1]]
    chunks = _b64_chunks("admin:" + LONG_TOKEN) | _b64_chunks("x" + LONG_TOKEN)
    for where, text in places.items():
        for secret in secrets:
            assert secret not in text, f"planted secret {secret!r} found in {where}"
        flat = text.replace("\\n", "").replace("\n", "")
        for chunk in chunks:
            assert chunk not in flat, f"base64 of a planted secret ({chunk!r}) found in {where}"
    # The tasks did print them: masks stand in their place, and the digests the collection writes stay.
    log = files["run.log"]
    assert "Authorization: Bearer [REDACTED:bearer_token]" in log and "password=[REDACTED:password_assignment]" in log
    assert "token: [REDACTED:secret_assignment]" in log
    assert "X-Token: [REDACTED:" in log and log.count("[REDACTED:known_secret]") >= 10
    summary = json.loads(files["summary.json"])
    head = summary["chain_head"]["hash"]
    assert len(head) == 64 and head in log and head == json.loads(files["events.jsonl"].splitlines()[-1])["hash"]
