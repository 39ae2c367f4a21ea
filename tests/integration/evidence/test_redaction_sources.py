# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 13 item 5: secrets reach the bundle. A real ansible-playbook run with secrets planted in
every variable source and in every shape the issue names; stdout, run.log, events.jsonl and
summary.json must hold none of them."""

from __future__ import annotations

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
