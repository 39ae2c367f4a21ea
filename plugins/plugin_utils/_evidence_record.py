# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The record of one evidence run (controller only), as plain data: what the run is (its settings,
decided at the first play), what a task is to the evidence, what the run gathers while it goes,
and how it ended. The callback fills them from Ansible's objects; the recorder, the summary and
the report read only these.

Private plugin_utils: the API may change without notice between releases.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from dataclasses import dataclass, field

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.format import utc_now
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.secret_patterns import is_secret_name
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._evidence_audits import (
    AuditCollector,
    combined_outcome,
    key_results,
)

# The callback's options (DOCUMENTATION of plugins/callback/evidence.py) and their defaults.
OPTION_DEFAULTS = {"evidence_dir": "artifacts/security/rotation", "show_commands": False, "signing_key": None,
                   "max_output": 16384, "fsync": False}


def truthy(value) -> bool:
    """An extra var or task keyword given as a bool or as a string ("true", "yes", "1", ...)."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    return str(value).strip().lower() in ("1", "true", "yes", "on", "y")


@dataclass(frozen=True)
class TaskRef:
    """A task as the evidence names it."""

    name: str | None = None
    action: str | None = None
    uuid: str | None = None
    no_log: bool = False
    role: str | None = None


@dataclass(frozen=True)
class RunSettings:
    """What the run is: read once, at its first play, from the extra vars and the callback's options."""

    env: str | None = None
    action: str = "all"
    provider: object = None
    key_id: object = None
    evidence_dir: str = ""
    check_mode: bool = False
    show_commands: bool = False
    allow_no_evidence: bool = False
    max_output: int = OPTION_DEFAULTS["max_output"]
    fsync: bool = False
    signing_key_path: str | None = None
    awx: dict = field(default_factory=dict)
    enclave_names: dict = field(default_factory=dict)  # {enclave_url: inventory host name}
    key_hosts: frozenset = frozenset()  # the hosts of the inventory group kms_keys

    @classmethod
    def from_run(cls, extra: dict, options: dict, check_mode: bool, play_vars=None, enclave_names=None, key_hosts=()):
        """``extra``: the run's extra vars (plain); ``options``: the callback's, defaults applied."""
        # -e evidence_dir wins; then a literal play var (playbooks/rotate.yml documents its default
        # there); templated play vars cannot be resolved this early and are ignored.
        play_dir = (play_vars or {}).get("evidence_dir")
        if not isinstance(play_dir, str) or "{{" in play_dir or "{%" in play_dir:
            play_dir = None
        evidence_dir = str(extra.get("evidence_dir") or play_dir or options["evidence_dir"])
        return cls(
            env=str(extra["env"]),
            action=str(extra.get("rotation_action") or extra.get("action") or "all"),  # action: the deprecated name
            provider=extra.get("kms_provider"),
            key_id=extra.get("kms_key_id") or os.environ.get("KMS_KEY_ID"),
            evidence_dir=os.path.abspath(os.path.expanduser(evidence_dir)),
            check_mode=check_mode,
            show_commands=truthy(extra.get("show_commands", options["show_commands"])),
            allow_no_evidence=truthy(extra.get("allow_no_evidence", False)),
            max_output=int(options["max_output"] or OPTION_DEFAULTS["max_output"]),
            fsync=bool(options["fsync"]),
            signing_key_path=str(options["signing_key"]) if options["signing_key"] else None,
            awx={k: v for k, v in extra.items() if (k.startswith("awx_") or k.startswith("tower_")) and not is_secret_name(k)},
            enclave_names=dict(enclave_names or {}),
            key_hosts=frozenset(key_hosts),
        )


@dataclass(frozen=True)
class RunEnd:
    """How the run ended: what ``end``, summary.json and the printed summary say."""

    ended: _dt.datetime
    duration_ms: int
    host_stats: dict
    aborted: bool
    action: str
    check_mode: bool
    outcome: str
    keys: list | None = None  # the per-key results of a run over kms_keys


@dataclass
class RunRecord:
    """What a run gathers for its bundle: audits (per key host too), failed tasks, recording errors."""

    started: _dt.datetime = field(default_factory=utc_now)
    started_mono: float = field(default_factory=time.monotonic)
    settings: RunSettings = field(default_factory=RunSettings)
    playbook: str | None = None
    bundle: str | None = None
    chain: object = None  # the bundle's ChainWriter once it is open
    audits: AuditCollector = field(default_factory=AuditCollector)
    key_audits: dict = field(default_factory=dict)  # key host -> AuditCollector
    failed_tasks: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    signing_key: object = None
    signing_error: str | None = None

    def add_audit(self, audit: dict, task: str | None, host: str) -> dict:
        """One redacted audit record of a result, normalized; a key host's also among that key's."""
        record = self.audits.add(audit, task, host)
        if host in self.settings.key_hosts:  # the record redacted and normalized once, above
            self.key_audits.setdefault(host, AuditCollector(show_commands=self.settings.show_commands)).add(record, task, host)
        return record

    def conclude(self, host_stats: dict, run_failed: bool, aborted: bool) -> RunEnd:
        """The outcome: the audits' rule for one key, combined per key in a run over kms_keys."""
        ended = utc_now()
        ctx = self.audits.run_context
        action = str(ctx.get("action") or self.settings.action or "all")
        failed = run_failed or aborted
        keys = None
        if self.settings.key_hosts:
            keys = key_results(self.key_audits, self.settings.key_hosts, host_stats, self.failed_tasks, action, aborted)
        outcome = self.audits.outcome(action, failed) if keys is None else combined_outcome(keys, failed)
        return RunEnd(ended=ended, duration_ms=int((time.monotonic() - self.started_mono) * 1000), host_stats=host_stats,
                      aborted=aborted, action=action, check_mode=self.settings.check_mode or truthy(ctx.get("check_mode", False)),
                      outcome=outcome, keys=keys)
