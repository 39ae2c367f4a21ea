#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run every benchmarks/bench_*.py in turn (one after the other, so they do not disturb each
other's timings), show each one's output (its tables) as it comes, then a summary.

    .venv/bin/python benchmarks/run_all.py            # all of them (what `make bench` runs)
    .venv/bin/python benchmarks/run_all.py workflow   # only bench_workflow.py

Exit status: 0 when every benchmark succeeded, 1 otherwise. Results are in benchmarks/results/.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    wanted = set(argv)
    scripts = sorted(p for p in HERE.glob("bench_*.py")
                     if not wanted or p.stem in wanted or p.stem.removeprefix("bench_") in wanted)
    if not scripts:
        print(f"no benchmark matches {sorted(wanted)}; have {[p.stem for p in sorted(HERE.glob('bench_*.py'))]}", file=sys.stderr)
        return 1
    summary = []
    for script in scripts:
        print(f"\n{'=' * 78}\n== {script.name}\n{'=' * 78}", flush=True)
        started = time.perf_counter()
        # Output is not captured: tables and progress appear as the benchmark prints them.
        rc = subprocess.run([sys.executable, str(script)], cwd=str(HERE.parent)).returncode
        summary.append((script.name, rc, time.perf_counter() - started))
    print(f"\n{'=' * 78}\n| benchmark | result | wall time |\n|---|---|---:|")
    for name, rc, seconds in summary:
        print(f"| {name} | {'ok' if rc == 0 else f'FAILED (exit {rc})'} | {seconds:.0f} s |")
    return 0 if all(rc == 0 for _, rc, _ in summary) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
