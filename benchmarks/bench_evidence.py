#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What does the evidence callback cost, and how fast is a bundle verified?

- ``callback overhead``: the same playbook of N trivial tasks (default 200 ``debug`` tasks on
  localhost, env=staging so a bundle is written) run with the callback enabled (repo
  ansible.cfg) and disabled (the same config without ``callbacks_enabled``), interleaved A/B,
  ``--repeat`` times each; the ratio of the median wall times is the overhead.
- ``verify``: time for ``verify_bundle`` on a bundle of 10,000 events (built with the real
  writer, events shaped like task results), median of ``--repeat`` runs; plus write time.
- ``redact``: the callback's redactor with 40 known secrets (random, fixed seed): time to learn
  them and build the pattern, and to redact 400 lines (about 60 KB) of task output shaped like a
  rotation's (measurements, key ids), median of ``--repeat`` runs.

Run from the repository root: ``.venv/bin/python benchmarks/bench_evidence.py``
(``--tasks 50 --repeat 1`` for a quick look). Writes benchmarks/results/evidence.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / ".collections"))

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import format as ev  # noqa: E402
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import verify as ev_verify  # noqa: E402
from ansible_collections.alfred.tee_kms.plugins.plugin_utils import _evidence_bundle as ev_bundle  # noqa: E402
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import secret_patterns as ev_secrets  # noqa: E402


def write_playbook(path: Path, tasks: int) -> None:
    lines = ["- hosts: localhost", "  gather_facts: false", "  tasks:"]
    for i in range(tasks):
        lines += [f"    - name: trivial task {i}", "      ansible.builtin.debug:", f"        msg: step {i}", "        verbosity: 1"]
    path.write_text("\n".join(lines) + "\n")


def run_playbook(workdir: Path, playbook: Path, inventory: Path, enabled: bool) -> tuple[float, float]:
    """(wall seconds, CPU seconds of ansible-playbook and all its workers)."""
    config = REPO / "ansible.cfg"
    if not enabled:
        # the repo config without callbacks_enabled (paths made absolute)
        config = workdir / "ansible-nocallback.cfg"
        if not config.exists():
            text = (REPO / "ansible.cfg").read_text().replace("./", str(REPO) + "/")
            config.write_text("\n".join(ln for ln in text.splitlines() if not ln.startswith("callbacks_enabled")) + "\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(config), ANSIBLE_NOCOLOR="1")
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(playbook),
           "-e", "env=staging", "-e", f"evidence_dir={workdir / 'evidence'}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark playbook failed (callback {'on' if enabled else 'off'}):\n{proc.stdout}\n{proc.stderr}")
    return elapsed, cpu


def build_bundle(root: Path, events: int) -> tuple[str, float]:
    bundle = root / "staging-all-20260216T101500Z"
    bundle.mkdir()
    start = time.perf_counter()
    chain = ev_bundle.ChainWriter(str(bundle / ev.EVENTS))
    chain.append("run_start", {"env": "staging", "action": "all"})
    for i in range(events - 2):
        chain.append("task_result", {
            "host": "localhost", "task": f"task {i}", "action": "ansible.builtin.command", "status": "ok",
            "changed": False, "duration_ms": i % 997, "rc": 0, "task_uuid": f"02fc0000-0001-0000-0000-{i:012d}",
            "stdout": f"line {i} measurement " + "ab" * 48,
        })
    chain.append("end", {"outcome": "success"})
    chain.close()
    (bundle / ev.RUN_LOG).write_text("[2026-02-16T10:15:00.000Z] INFO bench\n")
    ev_bundle.write_json(str(bundle / ev.SUMMARY), {"chain_head": {"seq": chain.seq, "hash": chain.head}})
    ev_bundle.write_manifest(str(bundle))
    return str(bundle), time.perf_counter() - start


def bench_redact(repeat: int) -> dict:
    import hashlib
    import random
    import re
    import string

    rnd = random.Random(22)
    known = ["".join(rnd.choice(string.ascii_letters + string.digits) for _ in range(rnd.randint(12, 48))) for _ in range(40)]
    text = "\n".join(f"line {i} measurement {hashlib.sha384(str(i).encode()).hexdigest()} status ok key_id=tokens/refresh"
                     for i in range(400))
    learn, redact = [], []
    for _ in range(max(repeat, 3)):
        re.purge()  # a callback learns its secrets once: no compiled pattern from the previous round
        start = time.perf_counter()
        redactor = ev_secrets.Redactor(known)
        redactor.redact_text("x")  # the pattern is built on first use
        learn.append(time.perf_counter() - start)
        start = time.perf_counter()
        redactor.redact_text(text)
        redact.append(time.perf_counter() - start)
    return {"known": len(known), "text_bytes": len(text), "median_learn_ms": round(statistics.median(learn) * 1000, 1),
            "median_redact_ms": round(statistics.median(redact) * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--events", type=int, default=10000)
    args = parser.parse_args()

    results: dict = {"python": platform.python_version(), "platform": platform.platform(), "tasks": args.tasks,
                     "repeat": args.repeat, "events": args.events}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        playbook = tmp_path / "bench.yml"
        write_playbook(playbook, args.tasks)
        inventory = tmp_path / "inventory.yml"
        inventory.write_text(f"all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
                             f"      ansible_python_interpreter: {sys.executable}\n")
        run_playbook(tmp_path, playbook, inventory, True)  # warm-up (caches, pyc)
        on, off, cpu_on, cpu_off = [], [], [], []
        for _ in range(args.repeat):
            wall, cpu = run_playbook(tmp_path, playbook, inventory, False)
            off.append(wall)
            cpu_off.append(cpu)
            wall, cpu = run_playbook(tmp_path, playbook, inventory, True)
            on.append(wall)
            cpu_on.append(cpu)
        bundles = sorted((tmp_path / "evidence").iterdir())
        last = bundles[-1]
        verified = ev_verify.verify_bundle(str(last))
        if not verified["verified"]:
            raise SystemExit(f"benchmark bundle does not verify: {verified['reason']}")
        results["callback"] = {
            "wall_s_off": [round(x, 3) for x in off], "wall_s_on": [round(x, 3) for x in on],
            "median_off_s": round(statistics.median(off), 3), "median_on_s": round(statistics.median(on), 3),
            "overhead_pct": round((statistics.median(on) / statistics.median(off) - 1) * 100, 2),
            "overhead_pct_min_wall": round((min(on) / min(off) - 1) * 100, 2),
            "cpu_s_off": [round(x, 3) for x in cpu_off], "cpu_s_on": [round(x, 3) for x in cpu_on],
            "cpu_overhead_pct": round((statistics.median(cpu_on) / statistics.median(cpu_off) - 1) * 100, 2),
            "load_average": os.getloadavg()[0],
            "events_per_run": verified["events"],
        }

        root = tmp_path / "big"
        root.mkdir()
        bundle, write_s = build_bundle(root, args.events)
        times = []
        for _ in range(max(args.repeat, 3)):
            start = time.perf_counter()
            res = ev_verify.verify_bundle(bundle)
            times.append(time.perf_counter() - start)
            assert res["verified"] and res["events"] == args.events, res
        results["verify"] = {"events": args.events, "bundle_bytes": os.path.getsize(os.path.join(bundle, ev.EVENTS)),
                             "write_s": round(write_s, 3), "verify_s": [round(t, 3) for t in times],
                             "median_verify_s": round(statistics.median(times), 3)}

    results["redact"] = bench_redact(args.repeat)

    out = REPO / "benchmarks" / "results" / "evidence.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    cb, vf, rd = results["callback"], results["verify"], results["redact"]
    print(f"{'measure':<44} {'value':>12}")
    print("-" * 57)
    print(f"{f'{args.tasks} tasks, callback off (median s)':<44} {cb['median_off_s']:>12.3f}")
    print(f"{f'{args.tasks} tasks, callback on (median s)':<44} {cb['median_on_s']:>12.3f}")
    print(f"{'callback overhead, median wall (%)':<44} {cb['overhead_pct']:>12.2f}")
    print(f"{'callback overhead, best wall (%)':<44} {cb['overhead_pct_min_wall']:>12.2f}")
    print(f"{'callback overhead, median CPU (%)':<44} {cb['cpu_overhead_pct']:>12.2f}")
    print(f"{'events per run':<44} {cb['events_per_run']:>12d}")
    print(f"{f'write {args.events} events (s)':<44} {vf['write_s']:>12.3f}")
    print(f"{f'verify {args.events} events (median s)':<44} {vf['median_verify_s']:>12.3f}")
    learn_label, redact_label = f"learn {rd['known']} known secrets (median ms)", f"redact {rd['text_bytes'] // 1024} KB of output (median ms)"
    print(f"{learn_label:<44} {rd['median_learn_ms']:>12.1f}")
    print(f"{redact_label:<44} {rd['median_redact_ms']:>12.1f}")
    print(f"\nwritten {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
