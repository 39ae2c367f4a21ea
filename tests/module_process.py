# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run one of the collection's modules as its own process, as Ansible does on a target, for the
provider suites against real servers (tests/aws, tests/vault)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODULES = REPO / "plugins" / "modules"


def run_module_process(name: str, module_args: dict, env: dict, check=False, diff=False, python_args=None, tmp_dir=None) -> dict:
    """The module's JSON result, plus ``_rc`` (exit code) and ``_raw`` (stdout and stderr)."""
    module_args = dict(module_args, _ansible_check_mode=check, _ansible_diff=diff)
    path = Path(tmp_dir or "/tmp") / f"args-{uuid.uuid4().hex}.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": module_args}))
    try:
        cmd = [sys.executable] + (python_args or [str(MODULES / f"{name}.py")]) + [str(path)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=str(REPO), check=False)
    finally:
        path.unlink()
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise AssertionError(f"module {name} printed no JSON result:\nstdout={proc.stdout}\nstderr={proc.stderr}") from None
    result["_rc"] = proc.returncode
    result["_raw"] = proc.stdout + proc.stderr
    return result
