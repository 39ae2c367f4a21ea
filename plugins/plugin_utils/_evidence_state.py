# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which evidence bundle this ansible-playbook process records: set by the alfred.tee_kms.evidence
callback, read by the alfred.tee_kms.evidence_head lookup (``current_run``), which
playbooks/rotate.yml asks before a live run changes anything.

Controller-only. The proof lives in this module's memory, not in the environment: anyone who
starts ansible-playbook sets its environment (``ALFRED_EVIDENCE_BUNDLE=<an old bundle>``), but only
the callback of this very process can set this state. Lookups run in the controller process or in
a worker forked from it (ansible-core forks its workers), and both see it; any process exec'd later
(a hook, a nested ansible-playbook) starts without it.
"""

from __future__ import annotations

import os

_STATE: dict = {}


def started(bundle: str) -> None:
    """The callback created ``bundle`` and records this run in it."""
    _STATE.clear()
    _STATE["bundle"] = bundle


def not_started(cause: str) -> None:
    """The callback ran for this run but records it nowhere, for ``cause``."""
    _STATE.clear()
    _STATE["error"] = cause


def current() -> dict:
    """``{bundle}``, ``{error}``, or {} when no evidence callback ran in this process."""
    return dict(_STATE)


def why_missing(bundle: str, error) -> str:
    """Why ``bundle`` records nothing: the callback's own words when it ran and failed (``error``), else the
    bundle named is gone, else no callback ran for this process (the evidence_head lookup's report_cause too)."""
    return error or (f"bundle '{bundle}' does not exist" if bundle else "the alfred.tee_kms.evidence callback is not enabled")


def missing_cause() -> str | None:
    """Why no evidence bundle records this run, or None when one does."""
    state = current()
    bundle = state.get("bundle", "")
    if bundle and os.path.isdir(bundle):
        return None
    return why_missing(bundle, state.get("error"))
