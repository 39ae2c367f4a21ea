# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A hook must not outlive the run: the module running it watches the processes up to the
ansible-playbook process above it, in real process trees shaped like Ansible's (a controller
named ansible-playbook, its forked worker, the worker's /bin/sh and the module's Python)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow import processes

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="the controller watch reads Linux /proc")

COLLECTIONS = str(Path(__file__).resolve().parents[5] / ".collections")

# Forks a worker (same command line, no exec, as ansible-playbook does); the worker starts the
# "module" through /bin/sh as the local connection does, then both wait.
CONTROLLER = r"""
import os, subprocess, sys
out, module = sys.argv[1], sys.argv[2]
open(out + ".controller", "w").write(str(os.getpid()))
pid = os.fork()
if pid == 0:
    open(out + ".worker", "w").write(str(os.getpid()))
    proc = subprocess.Popen(["/bin/sh", "-c", f"{sys.executable} {module} {out} && true"])
    os._exit(proc.wait())
os.waitpid(pid, 0)
"""

MODULE_CHAIN = r"""
import json, sys
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow import processes
open(sys.argv[1], "w").write(json.dumps(processes.controller_chain()))
"""

MODULE_HOOK = r"""
import json, sys
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow import hooks
seconds = sys.argv[1].rsplit("-", 1)[1]
result = hooks.run_hook(f"sleep {seconds} & wait", timeout=600)
open(sys.argv[1], "w").write(json.dumps(result))
"""


def _tree(tmp_path, module_source: str, name: str):
    module = tmp_path / "module.py"
    module.write_text(module_source)
    out = tmp_path / name
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    controller = tmp_path / "ansible-playbook"  # the name the controller is known by
    controller.write_text(CONTROLLER)
    proc = subprocess.Popen([sys.executable, str(controller), str(out), str(module)], env=env)
    return proc, out


def _wait(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _sleepers(seconds: str) -> list:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[:2] == [b"sleep", seconds.encode()]:
                found.append(int(entry.name))
    return found


def test_chain_ends_at_the_controller_above_the_worker(tmp_path):
    proc, out = _tree(tmp_path, MODULE_CHAIN, "chain.json")
    assert proc.wait(60) == 0
    chain = json.loads(out.read_text())
    worker, controller = int(Path(f"{out}.worker").read_text()), int(Path(f"{out}.controller").read_text())
    # The module, its /bin/sh, the worker, the controller - and not what started the controller.
    assert [pid for pid, _start in chain][-2:] == [worker, controller]
    assert len(chain) == 4


def test_no_chain_without_a_controller_above(tmp_path):
    """A module with no ansible-playbook process above it (a remote target's sshd, a plain shell)
    has no controller to watch: None, and run_hook does not watch."""
    module = tmp_path / "module.py"
    module.write_text(MODULE_CHAIN)
    out = tmp_path / "chain.json"
    # Two shells, then this test process: none of them is ansible-playbook.
    subprocess.run(["/bin/sh", "-c", f"/bin/sh -c '{sys.executable} {module} {out}; true'; true"],
                   env=dict(os.environ, PYTHONPATH=COLLECTIONS), check=True, timeout=60)
    assert json.loads(out.read_text()) is None


def test_chain_alive_notices_exit_and_pid_reuse():
    me = processes.proc_stat(os.getpid())
    assert processes.chain_alive([(os.getpid(), me[2])])
    assert not processes.chain_alive([(os.getpid(), me[2] + 1)])  # same pid, another process
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert not processes.chain_alive([(gone.pid, 0)])


def test_zombie_controller_counts_as_exited():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    _wait(lambda: processes.proc_stat(child.pid) is None or processes.proc_stat(child.pid)[0] == "Z", 30, "the child to exit")
    stat = processes.proc_stat(child.pid)
    try:
        assert stat is None or not processes.chain_alive([(child.pid, stat[2])])
    finally:
        child.wait()


@pytest.mark.parametrize("killed", ["controller", "worker"])
def test_hook_group_stopped_when_the_controller_is_gone(tmp_path, killed):
    """The controller (or its worker) disappears without passing a signal on, as ansible-core 2.17
    does on SIGTERM: the hook's group, in its own session, is stopped within a second or so."""
    seconds = f"7204{secrets.randbelow(10 ** 6):06d}"
    proc, out = _tree(tmp_path, MODULE_HOOK, f"result-{seconds}")
    try:
        _wait(lambda: len(_sleepers(seconds)) == 1, 60, "the hook to start")
        os.kill(int(Path(f"{out}.{killed}").read_text()), signal.SIGKILL)
        _wait(lambda: not _sleepers(seconds), 15, "the hook's sleeper to be stopped")
        _wait(out.exists, 15, "the module to finish")
        result = json.loads(out.read_text())
        assert result["outcome"] == "interrupted" and result["group_stopped"] is True
    finally:
        for pid in _sleepers(seconds):
            os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait()


def test_hook_unaffected_while_the_controller_lives(tmp_path):
    """The watch never stops a hook whose run is alive (a hook of a few watch intervals runs out)."""
    module = tmp_path / "module.py"
    module.write_text(MODULE_HOOK.replace('f"sleep {seconds} & wait"', '"sleep 1; echo done"'))
    proc, out = _tree(tmp_path, module.read_text(), "result-0")
    assert proc.wait(60) == 0
    result = json.loads(out.read_text())
    assert result["outcome"] == "ok" and result["stdout_lines"] == ["done"]
