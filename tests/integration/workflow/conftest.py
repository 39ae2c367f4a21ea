# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the workflow suites. The helpers live in workflow_support.py under a unique
module name: every suite's conftest is importable only as "conftest", so tests must not import it."""

from workflow_support import (  # noqa: F401  (fixtures)
    _fleet_back_to_ok,
    fleet,
    hook_pids,
    inventory,
    key,
    key_state,
    run_playbook,
    runner,
    trust,
    unwritable_dir,
)

__all__ = ["_fleet_back_to_ok", "fleet", "hook_pids", "inventory", "key", "key_state", "run_playbook", "runner", "trust",
           "unwritable_dir"]
