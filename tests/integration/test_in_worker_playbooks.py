# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The modules run in the Ansible worker on the controller, and as module processes elsewhere,
with the same results (plugins/plugin_utils/_module_in_worker.py).

"Elsewhere" here is a target whose interpreter is not the controller's own: a shell script that
records each start and then runs the same Python. No sshd runs on this machine, so this is the
fallback an SSH bastion takes (every condition but the connection is the same: the action
plugin's decision sends the task through ActionBase._execute_module, AnsiballZ and a process).
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TARGET = REPO / "tests" / "integration" / "targets" / "local_kms"

# A module of another collection built on TeeKmsModule, with the one-line action file every module
# of this collection has: it checks what the real modules cannot be made to do on demand
# (an uncaught exception, a warning in one loop item only, a no_log value echoed back).
PROBE_MODULE = '''#!/usr/bin/python
from __future__ import annotations
DOCUMENTATION = "module: probe"
import os
import re
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.module_base import TeeKmsModule


def handle(mod):
    mode = mod.params["mode"]
    if mode == "raise":
        raise RuntimeError("the probe exploded")
    if mode == "warn":
        mod.warn("the probe warns")
    return mod.add_diff({"changed": not mod.check_mode, "echo": "token is %s" % mod.params["token"], "name": mod.params["name"],
                         "check_mode": mod.check_mode, "ppid": os.getppid()}, "old", "new")


def main():
    TeeKmsModule(dict(mode=dict(type="str", default="ok", choices=["ok", "warn", "raise"]),
                      token=dict(type="str", no_log=True), name=dict(type="str", default="unnamed", aliases=["label"]))).run(handle)


if __name__ == "__main__":
    main()
'''
PROBE_ACTION = ("from ansible_collections.alfred.tee_kms.plugins.plugin_utils._module_in_worker import ActionModule"
                "  # noqa: F401\n")
PROBE_PLAY = [{"hosts": "localhost", "gather_facts": False, "tasks": [
    {"name": "plain", "probe.inworker.probe": {"label": "via-alias", "token": "s3cr3t-t0ken"}, "register": "plain"},
    {"name": "rehearsed", "probe.inworker.probe": {"token": "s3cr3t-t0ken"}, "check_mode": True, "register": "rehearsed"},
    {"name": "loop", "probe.inworker.probe": {"mode": "{{ item }}"}, "loop": ["warn", "ok"], "register": "looped"},
    {"name": "raises", "probe.inworker.probe": {"mode": "raise"}, "ignore_errors": True, "register": "raised"},
    {"name": "bad option", "probe.inworker.probe": {"colour": "red"}, "ignore_errors": True, "register": "bad"},
    {"name": "show", "ansible.builtin.copy": {"dest": "{{ out }}", "content": "{{ {'plain': plain, 'rehearsed': rehearsed,"
                                              " 'looped': looped, 'raised': raised, 'bad': bad} | to_json }}"}},
]}]


def _wrapper(tmp_path: Path) -> tuple[Path, Path]:
    """An interpreter that is not the controller's own: it records its start, then runs the same Python."""
    marker = tmp_path / "module-processes.log"
    script = tmp_path / "remote-python"
    script.write_text(f"#!/bin/sh\necho \"started $*\" >> '{marker}'\nexec '{sys.executable}' \"$@\"\n")
    script.chmod(0o755)
    return script, marker


def _playbook(tmp_path: Path, playbook: Path, interpreter: str, *extra: str, collections: str = "") -> subprocess.CompletedProcess:
    inventory = tmp_path / f"inventory-{abs(hash(interpreter))}.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": interpreter}}}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "ALFRED_", "AWS_"))}
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ALFRED_TEE_KMS_STORE=str(tmp_path / "store.json"))
    if collections:
        env["ANSIBLE_COLLECTIONS_PATH"] = f"{collections}:{REPO / '.collections'}"
    proc = subprocess.Popen([str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook), *extra], cwd=str(tmp_path),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), proc.pid


@pytest.fixture
def probe_collection(tmp_path):
    root = tmp_path / "collections"
    base = root / "ansible_collections" / "probe" / "inworker"
    (base / "plugins" / "modules").mkdir(parents=True)
    (base / "plugins" / "action").mkdir(parents=True)
    (base / "galaxy.yml").write_text("namespace: probe\nname: inworker\nversion: 1.0.0\nauthors: [test]\nreadme: README.md\n")
    (base / "plugins" / "modules" / "probe.py").write_text(PROBE_MODULE)
    (base / "plugins" / "action" / "probe.py").write_text(PROBE_ACTION)
    playbook = tmp_path / "probe.yml"
    playbook.write_text(json.dumps(PROBE_PLAY))
    return root, playbook


def _probe(tmp_path, probe_collection, interpreter, *extra):
    root, playbook = probe_collection
    out = tmp_path / f"results-{abs(hash(interpreter))}.json"
    (proc, pid) = _playbook(tmp_path, playbook, interpreter, "-e", f"out={out}", *extra, collections=str(root))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text()), pid, proc


def _comparable(results: dict) -> dict:
    """Results without what differs by nature between a worker and a process (pids, tracebacks)."""
    text = json.dumps(results, sort_keys=True)
    data = json.loads(text)
    for name in ("plain", "rehearsed"):
        data[name].pop("ppid")
    for item in data["looped"]["results"]:
        item.pop("ppid")
    data["raised"].pop("exception", None)
    data["raised"].pop("module_stderr", None)
    return data


def test_probe_runs_in_the_worker_with_module_semantics(tmp_path, probe_collection):
    wrapper, marker = _wrapper(tmp_path)
    worker, playbook_pid, proc = _probe(tmp_path, probe_collection, sys.executable, "--diff", "-vvv")
    process, _pid, process_proc = _probe(tmp_path, probe_collection, str(wrapper), "--diff")

    # In the worker: the module's parent is ansible-playbook itself (the worker is its child), and
    # no AnsiballZ payload was built or started.
    assert worker["plain"]["ppid"] == playbook_pid
    assert "AnsiballZ_probe" not in proc.stdout and "runs in the worker" in proc.stdout
    # As a process: one module process per module run (2 tasks + 2 loop items + 2 failures).
    assert marker.read_text().count("AnsiballZ_probe") == 6
    assert process["plain"]["ppid"] != playbook_pid

    for results, run in ((worker, proc), (process, process_proc)):
        assert results["plain"]["echo"] == "token is ********", "a no_log value came back in a result"
        assert results["plain"]["name"] == "via-alias" and results["plain"]["changed"] is True
        assert results["plain"]["diff"] == {"before": "old", "after": "new"}
        assert results["rehearsed"]["check_mode"] is True and results["rehearsed"]["changed"] is False
        # Shown once: the warning of the first loop item did not leak into the second.
        assert (run.stdout + run.stderr).count("[WARNING]: the probe warns") == 1, run.stdout + run.stderr
        assert results["raised"]["failed"] is True and "the probe exploded" in json.dumps(results["raised"])
        assert results["bad"]["failed"] is True and "colour" in results["bad"]["msg"]
        assert "s3cr3t-t0ken" not in json.dumps(results)
    assert _comparable(worker) == _comparable(process)


def test_opt_out_variable_runs_modules_as_processes(tmp_path, probe_collection):
    _root, playbook = probe_collection
    results, playbook_pid, proc = _probe(tmp_path, probe_collection, sys.executable, "-e", "alfred_tee_kms_in_worker=false", "-vvv")
    assert results["plain"]["ppid"] != playbook_pid
    assert "alfred_tee_kms_in_worker is false" in proc.stdout


def _evidence_results(run_dir: Path) -> list:
    """The task results of the run's evidence bundle, without times, hash chain and the run's own folder."""
    bundles = glob.glob(str(run_dir / "evidence" / "*" / "events.jsonl"))
    assert len(bundles) == 1, bundles
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?", "<time>", Path(bundles[0]).read_text())
    events = [json.loads(line.replace(str(run_dir), "<run>")) for line in text.splitlines()]
    volatile = ("duration_ms", "ts", "time", "started_at", "finished_at", "timestamp", "hash", "prev", "task_uuid")
    return [{k: v for k, v in e.items() if k not in volatile} for e in events if e["type"] == "task_result"]


@pytest.mark.slow
def test_local_kms_target_gives_the_same_evidence_in_the_worker_and_as_processes(tmp_path):
    """The real modules over the whole local_kms target (check mode, --diff, refused changes):
    the evidence callback records the same task results either way."""
    wrapper, marker = _wrapper(tmp_path)
    playbook = tmp_path / "target.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "roles": [{"role": str(TARGET)}]}]))
    recorded = []
    for label, interpreter in (("worker", sys.executable), ("process", str(wrapper))):
        run_dir = tmp_path / label
        run_dir.mkdir()
        (run_dir / "store.json").unlink(missing_ok=True)
        proc, _pid = _playbook(run_dir, playbook, interpreter, "--diff", "-e",
                               json.dumps({"evidence_dir": str(run_dir / "evidence"), "env": "integration"}))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        recorded.append(_evidence_results(run_dir))
    assert marker.exists() and marker.read_text().count("started") >= 10
    worker, process = recorded
    assert len(worker) == len(process) > 20
    for in_worker, as_process in zip(worker, process):
        assert in_worker == as_process
