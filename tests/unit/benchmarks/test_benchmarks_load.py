# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`make bench` is not part of `make test`: each benchmark must at least load, so that a moved
test helper (bench_vault imports tests/vault/vault_support.py) breaks a test, not the next
benchmark run. Timings stay in the benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
LOAD = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('bench', sys.argv[1]); "
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
        "assert callable(getattr(module, 'main', None)), 'no main()'")


@pytest.mark.parametrize("path", sorted((REPO / "benchmarks").glob("bench_*.py")), ids=lambda p: p.name)
def test_benchmark_loads_with_its_helpers(path):
    # A fresh interpreter with only the collection on its path, as `make bench` starts each one
    # (this test process has tests/ on sys.path, which would hide a missing import path).
    env = dict(os.environ, PYTHONPATH=str(REPO / ".collections"))
    done = subprocess.run([sys.executable, "-c", LOAD, str(path)], cwd=str(REPO), env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
