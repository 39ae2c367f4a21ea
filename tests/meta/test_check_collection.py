# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection guard of `make test` catches ids built from the clock and passes stable ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHECKER = Path(__file__).resolve().parent / "check_collection.py"

STABLE = '''
import time
import pytest

@pytest.mark.parametrize("offset", [-1, 301], ids=["before", "after"])
def test_stable(offset):
    assert time.time() + offset
'''

CLOCK = '''
import time
import pytest

@pytest.mark.parametrize("at", [int(time.time())])
def test_clock(at):
    assert at
'''


def _check(tmp_path: Path, source: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_sample.py").write_text(source)
    return subprocess.run([sys.executable, str(CHECKER), str(tmp_path)], cwd=tmp_path,
                          capture_output=True, text=True, check=False)


def test_clock_in_an_id_is_caught(tmp_path):
    proc = _check(tmp_path, CLOCK)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "test ids differ" in proc.stderr and "test_clock[" in proc.stderr


def test_stable_ids_pass(tmp_path):
    proc = _check(tmp_path, STABLE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 test ids, identical" in proc.stdout
