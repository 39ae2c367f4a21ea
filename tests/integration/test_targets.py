# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run each integration target (ansible-test shape) with the real ansible-playbook.

Every target under tests/integration/targets/ is played as a role on localhost, with the
repository's ansible.cfg, a throw-away key store (ALFRED_TEE_KMS_STORE) and a temporary
evidence directory. The test fails when the play fails.

Run: .venv/bin/python -m pytest tests/integration/test_targets.py
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
TARGETS_DIR = os.path.join(HERE, "targets")
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def _targets():
    found = []
    for name in sorted(os.listdir(TARGETS_DIR)) if os.path.isdir(TARGETS_DIR) else []:
        path = os.path.join(TARGETS_DIR, name)
        if not os.path.isfile(os.path.join(path, "tasks", "main.yml")):
            continue
        aliases = open(os.path.join(path, "aliases")).read().split() if os.path.isfile(os.path.join(path, "aliases")) else []
        if "disabled" in aliases or "unsupported" in aliases:
            continue
        found.append(name)
    return found


def _task_count(target):
    """Tasks the target runs (imports and blocks unfolded), to prove the play did not skip them."""
    import yaml

    def count(tasks):
        total = 0
        for task in tasks or []:
            if "block" in task:
                total += count(task["block"]) + count(task.get("rescue")) + count(task.get("always"))
            elif any(k.endswith(("import_tasks", "include_tasks")) for k in task):
                name = next(v for k, v in task.items() if k.endswith(("import_tasks", "include_tasks")))
                total += count(_load(os.path.join(TARGETS_DIR, target, "tasks", name)))
            else:
                total += 1
        return total

    def _load(path):
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)

    return count(_load(os.path.join(TARGETS_DIR, target, "tasks", "main.yml")))


def _run(tmp_path, target, extra_args=()):
    playbook = tmp_path / "play.yml"
    # JSON is YAML: no quoting surprises with paths.
    playbook.write_text(json.dumps([{
        "name": f"Integration target {target}",
        "hosts": "localhost",
        "gather_facts": False,
        "roles": [{"role": os.path.join(TARGETS_DIR, target)}],
    }], indent=1))
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    store = tmp_path / "store" / "kms-store.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "ALFRED_", "AWS_"))}
    env.update(ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ALFRED_TEE_KMS_STORE=str(store),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    cmd = [ANSIBLE_PLAYBOOK, "-i", str(inventory), str(playbook), "-e",
           json.dumps({"evidence_dir": str(tmp_path / "evidence"), "env": "integration"}),
           *extra_args]
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300, check=False)
    return proc, store


@pytest.mark.slow
@pytest.mark.parametrize("target", _targets())
def test_target(tmp_path, target):
    proc, store = _run(tmp_path, target)
    assert proc.returncode == 0, f"target {target} failed (rc={proc.returncode})\n{proc.stdout}\n{proc.stderr}"
    recap = re.search(r"localhost\s+: ok=(\d+)\s+changed=\d+\s+unreachable=0\s+failed=0\s+skipped=(\d+)", proc.stdout)
    assert recap, proc.stdout
    assert int(recap.group(1)) + int(recap.group(2)) == _task_count(target), "the play did not run every task of the target"
    assert "ERROR!" not in proc.stdout + proc.stderr
    if store.exists():
        assert stat.S_IMODE(store.stat().st_mode) == 0o600
        # Key material lives only in the store: never in the play output.
        doc = json.loads(store.read_bytes())
        for key in doc["keys"].values():
            for version in key["versions"]:
                assert version["material"] not in proc.stdout + proc.stderr


def test_local_kms_target_fails_without_a_store(tmp_path, monkeypatch):
    """The wrapper's own guard: a play that fails is reported as failed."""
    if "local_kms" not in _targets():
        pytest.skip("local_kms target not present")
    monkeypatch.delenv("ALFRED_TEE_KMS_STORE", raising=False)
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([{"name": "No store", "hosts": "localhost", "gather_facts": False,
                                     "roles": [{"role": os.path.join(TARGETS_DIR, "local_kms")}]}]))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "ALFRED_"))}
    env["ANSIBLE_CONFIG"] = os.path.join(REPO, "ansible.cfg")
    proc = subprocess.run([ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
                           "-e", json.dumps({"evidence_dir": str(tmp_path / "evidence")}), str(playbook)],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Set ALFRED_TEE_KMS_STORE to the path of a temporary key store" in proc.stdout
