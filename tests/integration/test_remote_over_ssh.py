# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The modules still run as modules on a remote target: a bastion host reached over SSH.

On the controller each module runs in the Ansible worker (plugins/plugin_utils/_module_in_worker.py).
Any other connection must run it as before: Ansible sends the AnsiballZ payload over SSH and the
target's Python starts it as a module process. The bastion is a real sshd on loopback
(tests/integration/ssh_bastion.py) whose Python is the controller's own venv Python, so the
connection alone decides. The same play runs once on the bastion and once on the controller,
against one real local KMS store, and must give the same results.

Run: .venv/bin/python -m pytest tests/integration/test_remote_over_ssh.py
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ssh_bastion import SshBastion, missing

from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local import LocalKmsProvider

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
KEY_ID = "tokens/over-ssh"
LIVE, CURRENT, NEW = "a1" * 48, "b2" * 48, "c3" * 48
MODULES = ("alfred.tee_kms.kms_key_info", "alfred.tee_kms.measurement_allowlist")
READ = {"alfred.tee_kms.kms_key_info": {"key_id": KEY_ID, "store_path": "{{ store }}"}}
PLAY = [{"hosts": "all", "gather_facts": False, "tasks": [
    {"name": "Read the key", **READ, "register": "info"},
    {"name": "Rehearse allowing a new image", "alfred.tee_kms.measurement_allowlist": {
        "key_id": KEY_ID, "store_path": "{{ store }}", "measurements": [NEW], "state": "present", "protect": [LIVE]},
     "check_mode": True, "diff": True, "register": "rehearsed"},
    {"name": "Read a key that does not exist", "alfred.tee_kms.kms_key_info": {"key_id": "tokens/absent", "store_path": "{{ store }}"},
     "ignore_errors": True, "register": "absent"},
    # A controller play that sends one task to the bastion: the delegated connection decides, not the play's.
    {"name": "Read the key through the bastion", **READ, "delegate_to": "bastion", "when": "inventory_hostname != 'bastion'",
     "register": "delegated"},
    {"name": "Keep the results", "delegate_to": "localhost", "ansible.builtin.copy": {
        "dest": "{{ out }}/{{ inventory_hostname }}.json", "mode": "0600",
        "content": "{{ {'info': info, 'rehearsed': rehearsed, 'absent': absent, 'delegated': delegated} | to_json }}"}},
]}]


def _started_over_ssh(out: str, port: int) -> list:
    """The modules whose AnsiballZ payload the target's Python started through ``ssh`` to ``port``, in order."""
    starts = re.compile(rf"{re.escape(sys.executable)} \S+/AnsiballZ_(\w+)\.py")
    return [name for line in out.splitlines() if "SSH: EXEC ssh " in line and f"-o Port={port} " in line
            for name in starts.findall(line)]


def _printed_diff(out: str) -> str:
    """The one diff the run printed: from ``--- before`` to the blank line after it."""
    assert out.count("--- before") == 1, out
    return out[out.index("--- before"):].split("\n\n", 1)[0]


@pytest.fixture(scope="module")
def bastion(tmp_path_factory, unavailable):
    reason = missing()
    if reason:
        unavailable(reason)
    server = SshBastion(tmp_path_factory.mktemp("bastion")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def runs(bastion, tmp_path_factory):
    """The play on the bastion, then on the controller, with -vvv: per host the output, the
    registered results and how many commands the sshd ran during that run."""
    tmp = tmp_path_factory.mktemp("over-ssh")
    store = tmp / "store.json"
    LocalKmsProvider(str(store)).create_key(KEY_ID, [LIVE, CURRENT], "sha384", None)
    inventory = tmp / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {
        "bastion": bastion.inventory_vars(sys.executable, tmp / "remote-tmp"),
        "controller": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
    }}}))
    playbook = tmp / "play.json"
    playbook.write_text(json.dumps(PLAY))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "ALFRED_", "AWS_"))}
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    done = {}
    for host in ("bastion", "controller"):
        extra = {"store": str(store), "out": str(tmp), "evidence_dir": str(tmp / "evidence" / host)}
        sessions = bastion.sessions()
        proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), "--limit", host, "-vvv", "-e", json.dumps(extra),
                               str(playbook)], cwd=str(REPO), env=env, capture_output=True, text=True, timeout=300, check=False)
        (tmp / f"{host}.log").write_text(proc.stdout + proc.stderr)  # read it when an assertion below fails
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr
        done[host] = {"out": proc.stdout, "results": json.loads((tmp / f"{host}.json").read_text()),
                      "sessions": bastion.sessions() - sessions}
    done["store_unchanged"] = hashlib.sha256(store.read_bytes()).hexdigest() == before
    done["store"] = store
    return done


def test_bastion_runs_each_module_as_a_process_over_ssh(runs, bastion):
    out = runs["bastion"]["out"]
    assert "runs in the worker" not in out
    for module in MODULES:
        assert f"{module}: runs as a module process (connection ssh)" in out
    # Each module task: the AnsiballZ payload was started over SSH, on this sshd, by the target's Python.
    assert _started_over_ssh(out, bastion.port) == ["kms_key_info", "measurement_allowlist", "kms_key_info"]
    # The sshd itself saw the key login and ran the commands: at least temp dir, chmod and run per module task.
    assert f"Accepted publickey for {bastion.user} from 127.0.0.1" in bastion.log.read_text()
    assert runs["bastion"]["sessions"] >= 3 * 3


def test_controller_runs_in_the_worker_except_the_task_delegated_to_the_bastion(runs, bastion):
    out = runs["controller"]["out"]
    # Read, rehearse and the failed read ran in the worker; the delegated read went over SSH.
    assert out.count("runs in the worker (connection local") == 3
    assert out.count("alfred.tee_kms.kms_key_info: runs as a module process (connection ssh)") == 1
    assert _started_over_ssh(out, bastion.port) == ["kms_key_info"]
    assert runs["controller"]["sessions"] >= 3
    assert runs["controller"]["results"]["delegated"] == runs["controller"]["results"]["info"]


def test_results_over_ssh_equal_those_in_the_worker(runs):
    remote, local = runs["bastion"]["results"], runs["controller"]["results"]
    assert remote["info"]["exists"] is True and remote["info"]["key"]["allowed_measurements"] == [LIVE, CURRENT]
    assert remote["absent"]["failed"] is True and "tokens/absent" in remote["absent"]["msg"]
    for name in ("info", "rehearsed", "absent"):
        assert remote[name] == local[name], name


def test_check_mode_diff_over_ssh_shows_the_local_diff_and_changes_nothing(runs):
    remote, local = runs["bastion"]["results"]["rehearsed"], runs["controller"]["results"]["rehearsed"]
    assert remote["changed"] is True and remote["allowed_measurements"] == [LIVE, CURRENT, NEW]
    assert remote["diff"] == local["diff"]
    assert remote["diff"]["after"]["allowed_measurements"] == [LIVE, CURRENT, NEW]
    # The diff the operator reads, as the default callback prints it.
    printed = _printed_diff(runs["bastion"]["out"])
    assert printed == _printed_diff(runs["controller"]["out"])
    assert f'+        "{NEW}"' in printed
    assert runs["store_unchanged"], "a check-mode run changed the store"
    assert LocalKmsProvider(str(runs["store"])).describe_key(KEY_ID)["allowed_measurements"] == [LIVE, CURRENT]
