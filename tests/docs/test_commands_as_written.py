# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every shell command of README.md and docs/runbook.md runs as written.

The fenced `bash` blocks of one document are run in order, as one `bash -euo pipefail` script
(exports carry over, as in the operator's shell), in a fresh copy of the checkout, from a shell
whose PATH has no venv (the documents' own activation must work), with an empty home, against
a real enclave simulator fleet and a new local key store. The test then checks the key's final
state, that every evidence bundle verifies and that no run printed a warning.

What the operator brings and the documents assume, the test provides in the copy: the
inventory `inventory/staging.yml` (the fleet's URLs), `trust.yml` (the fleet's evidence key)
and the validate hook `scripts/smoke/token-refresh.sh` (the service's smoke test; here it
calls the API health endpoint). The placeholders `<current image>` / `<new image>` and the
example health URL are replaced by the fleet's values. Excluded commands: EXCLUDED below.

Run: .venv/bin/python -m pytest tests/docs/test_commands_as_written.py
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools" / "enclave_sim"))

from fleet import SimulatorFleet  # noqa: E402  (helper outside the collection)

from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local import LocalKmsProvider  # noqa: E402

CURRENT = "a7" * 48
NEW = "b8" * 48
NEVER = "c9" * 48
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[a-z]*)\s*$")
BREAK_LOCK_EXAMPLE = (
    "ansible-playbook playbooks/rotate.yml -e env=production -e confirm_production=true -e rotation_action=rollback \\\n"
    "  -e '{\"break_lock_owner\": \"awx@automation-job-41-x7k2p/pid:9/start:5531/boot:0f0e.../pidns:4026532801\"}'")
# (document, command as written): why it is not run here.
EXCLUDED = {
    ("README.md", "make demo"): "runs its simulator on the fixed port 18480 of inventories/demo/hosts.yml, shared by "
                                "every checkout on the machine; tests/integration/test_demo.py runs its "
                                "tools/demo/run_demo.py on a free port instead",
    ("README.md", "make test"): "the whole test suite, which contains this test",
    ("docs/runbook.md", BREAK_LOCK_EXAMPLE): (
        "names an example owner (elided with ...) of a dead job's lock, so there is no such lock to break here; "
        "tests/integration/workflow/test_fail_safe_rollback.py breaks a real one the same way"),
}


def shell_blocks(document: str) -> list[list[str]]:
    """The command lines of every bash/sh/shell fenced block (indentation of list items removed)."""
    blocks, current, indent, other = [], None, 0, False
    for line in (REPO / document).read_text(encoding="utf-8").splitlines():
        fence = FENCE.match(line)
        if fence:
            if current is None and not other:  # an opening fence
                if fence.group("lang") in ("bash", "sh", "shell"):
                    current, indent = [], len(fence.group("indent"))
                else:
                    other = True
            else:  # a closing fence
                if current:
                    blocks.append(current)
                current, other = None, False
            continue
        if current is not None:
            current.append(line[indent:])
    return blocks


def commands(block: list[str]) -> list[str]:
    """The block's commands, a command continued with a trailing backslash kept as one."""
    found, current = [], ""
    for line in block:
        current += line
        if line.endswith("\\"):
            current += "\n"
            continue
        found.append(current)
        current = ""
    return found + ([current] if current else [])


def script_for(document: str) -> tuple[str, list[str]]:
    lines, excluded = [], []
    for block in shell_blocks(document):
        for command in commands(block):
            if (document, command.split("  #")[0].strip()) in EXCLUDED:
                excluded.append(command.split("  #")[0].strip())
                continue
            lines.append(command)
    return "\n".join(lines) + "\n", excluded


def test_the_exclusions_name_commands_that_exist():
    """An exclusion for a command no document holds any more would hide nothing: drop it."""
    for document in ("README.md", "docs/runbook.md"):
        dummy, excluded = script_for(document)
        assert sorted(excluded) == sorted(c for d, c in EXCLUDED if d == document)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    enclaves = [{"name": "enclave-1", "measurement": CURRENT}, {"name": "enclave-2", "measurement": NEW},
                {"name": "probe-1", "measurement": NEVER}, {"name": "api", "measurement": CURRENT}]
    with SimulatorFleet(tmp_path_factory.mktemp("sim"), enclaves=enclaves) as running:
        yield running


def checkout_copy(dest: Path) -> Path:
    """The checkout's files (tracked and new, not ignored) with their times, the venv linked."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")
    dest.mkdir()
    names = [name for name in listed if name and (REPO / name).exists()]
    subprocess.run(["cp", "-p", "--parents", "-t", str(dest), *names], cwd=REPO, check=True)
    # A clone: git tracks these files (make build packages what git tracks).
    git = ["git", "-c", "user.name=docs-test", "-c", "user.email=docs-test@localhost"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "checkout"]):
        subprocess.run(git + args, cwd=dest, check=True, capture_output=True)
    (dest / ".venv").symlink_to(REPO / ".venv")
    # `make setup` in the copy must find the venv up to date (it would otherwise reinstall it).
    fresh = subprocess.run(["make", "-q", ".venv/.installed"], cwd=dest, capture_output=True, check=False)
    assert fresh.returncode == 0, "the checkout's .venv is older than its requirement files: run make setup first"
    return dest


def operator_files(copy: Path, fleet) -> None:
    urls = fleet.urls
    (copy / "inventory").mkdir()
    for env in ("staging", "production"):  # one simulated fleet stands in for both
        # The simulator serves plain http, which production refuses unless the operator allows it (recorded).
        (copy / "inventory" / f"{env}.yml").write_text(yaml.safe_dump({"all": {"vars": {"allow_http_enclaves": env == "production"},
                                                                               "children": {
            "enclaves": {"hosts": {n: {"enclave_url": urls[n]} for n in ("enclave-1", "enclave-2")}},
            "probe_enclaves": {"hosts": {"probe-1": {"enclave_url": urls["probe-1"]}}}}}}))
    (copy / "trust.yml").write_text(yaml.safe_dump({"attestation_trust": {"public_keys": fleet.trust["alfred_public_keys"]}}))
    hook = copy / "scripts" / "smoke" / "token-refresh.sh"
    hook.parent.mkdir(parents=True)
    hook.write_text("#!/bin/sh\n# The service's smoke test stands here: ask the token API whether it is healthy.\n"
                    f"exec {sys.executable} -c \"import sys, urllib.request; "
                    "sys.exit(urllib.request.urlopen(sys.argv[1], timeout=10).status != 200)\" "
                    "\"$ALFRED_ROTATION_API_HEALTHCHECK_URL\"\n")
    hook.chmod(0o755)


def run_document(document: str, tmp_path: Path, fleet):
    copy = checkout_copy(tmp_path / "checkout")
    operator_files(copy, fleet)
    script, dummy = script_for(document)
    script = (script.replace("<current image>", CURRENT).replace("<new image>", NEW)
              .replace("https://api.staging.example/healthz", fleet.urls["api"] + "/healthz"))
    (tmp_path / "home").mkdir()
    venv_bin = str(REPO / ".venv" / "bin")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != venv_bin)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANSIBLE_", "ALFRED_", "KMS_", "NEXT_KMS_", "AWS_", "VIRTUAL_ENV", "MAKE"))
           and k not in ("PYTHONPATH", "MAKEFLAGS", "MFLAGS")}
    env.update(HOME=str(tmp_path / "home"), PATH=path, ANSIBLE_NOCOLOR="1")
    result = subprocess.run(["bash", "-euxo", "pipefail", "-c", script], cwd=copy, env=env, capture_output=True,
                            text=True, timeout=1500, check=False)
    return copy, script, result


def bundles(copy: Path) -> list[Path]:
    root = copy / "artifacts" / "security" / "rotation"
    return sorted(p for p in root.iterdir() if p.is_dir())


# The warnings the documented commands are meant to print here: their rollback runs while the
# fleet already runs the new image, and the rollback keeps it allowed (docs/runbook.md); and the
# simulated fleet serves plain http (warned about in staging, allowed by name in production).
EXPECTED_WARNING = re.compile(r"\[WARNING\]: (?:Kept measurement\(s\) [0-9a-f]{16}\.\.\. allowed beside the snapshot's "
                              r"allow-list: live enclaves run them and would be locked out"
                              r"|Enclave URL\(s\) (?:http://127\.0\.0\.1:\d+/enclaves/[a-z0-9-]+(?:, )?)+ use plain http"
                              r"(?::|, allowed in production by allow_http_enclaves=true)[^\n]*)\n?")


def check_run(copy, script, result):
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"--- script ---\n{script}\n--- output (tail) ---\n{output[-8000:]}"
    unexpected = EXPECTED_WARNING.sub("", output)
    assert "[WARNING]" not in unexpected and "[DEPRECATION WARNING]" not in unexpected, unexpected[-8000:]
    found = bundles(copy)
    assert found, "no evidence bundle was written"
    for bundle in found:
        summary = json.loads((bundle / "summary.json").read_text(encoding="utf-8"))
        assert summary["outcome"] == "success", (bundle.name, summary["outcome"])
    assert output.count('"verified": true') >= 1


def test_readme_commands_run_as_written(fleet, tmp_path):
    copy, script, result = run_document("README.md", tmp_path, fleet)
    check_run(copy, script, result)
    key = LocalKmsProvider(str(copy / "kms" / "store.json")).describe_key("tokens/refresh")
    # Created, rotated 1 -> 2 (then the runbook CLI found it done), rolled back.
    assert key["primary_version"] == 1 and [v["version"] for v in key["versions"]] == [1, 2]
    assert (key.get("snapshot") or {}).get("status") == "rolled_back"
    assert key["attestation_trust"]["public_keys"] == fleet.trust["alfred_public_keys"]
    installed = tmp_path / "home" / ".ansible" / "collections" / "ansible_collections" / "alfred" / "tee_kms"
    assert (installed / "MANIFEST.json").is_file() and (installed / "CHANGELOG.rst").is_file()
    # The operator's files beside the playbooks (key store, trust, inventory) stay out of the build.
    for name in ("kms", "trust.yml", "inventory", "artifacts"):
        assert not (installed / name).exists(), name


def test_runbook_commands_run_as_written(fleet, tmp_path):
    copy, script, result = run_document("docs/runbook.md", tmp_path, fleet)
    check_run(copy, script, result)
    staging = LocalKmsProvider(str(copy / "kms" / "store.json")).describe_key("tokens/refresh")
    assert staging["primary_version"] == 2 and sorted(staging["allowed_measurements"]) == [CURRENT, NEW]
    # Production: its own key, rotated, then rolled back (emergency rollback, then forced again).
    # The primary goes back to 1; the new image stays allowed because an enclave of the fleet runs
    # it (a rollback never locks out a live enclave; it warns, see EXPECTED_WARNING).
    key = LocalKmsProvider(str(copy / "kms" / "production.json")).describe_key("tokens/refresh")
    assert key["primary_version"] == 1 and sorted(key["allowed_measurements"]) == [CURRENT, NEW]
    assert [v["version"] for v in key["versions"]] == [1, 2]
    assert (key.get("snapshot") or {}).get("status") == "rolled_back"
    # The validate hook ran (relative to the directory the commands run from) in the live staging rotation.
    staged = [b for b in bundles(copy) if b.name.startswith("staging-all-")]
    hooks = [h for b in staged for h in json.loads((b / "summary.json").read_text(encoding="utf-8")).get("hooks") or []]
    assert any(h.get("name") == "validate" and h.get("rc") == 0 for h in hooks), hooks
