# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The audit records of a run (controller only): collected per kind into the summary's fields,
and the run's outcome they decide (docs/evidence.md, "Audit protocol" and "Outcome").

Private plugin_utils: the API may change without notice between releases. Which kinds exist and
what fields they carry: plugins/module_utils/_evidence/audit_kinds.py.
"""

from __future__ import annotations

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.audit import command_digest
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.format import to_plain


def _truthy(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int,)):
        return value != 0
    return str(value).strip().lower() in ("1", "true", "yes", "on", "y")


# Kinds (audit_kinds.KIND_FIELDS) kept as a list of their records, by the collector's attribute; run_context
# and key_state are merged, attestation keeps its three fields; every other kind lands in ``other``.
LISTED = {"hook": "hooks", "change": "changes", "rollback": "rollbacks", "probe": "probes", "health": "health",
          "secret_scan": "secret_scans"}


class AuditCollector:
    """Aggregates audit records (see docs/evidence.md, "Audit protocol") into summary fields."""

    def __init__(self, show_commands: bool = False):
        self.show_commands = show_commands
        self.run_context: dict = {}
        self.key_before: dict | None = None
        self.key_after: dict | None = None
        self.attestation: list = []
        self.hooks: list = []
        self.changes: list = []
        self.rollbacks: list = []
        self.probes: list = []
        self.health: list = []
        self.secret_scans: list = []
        self.other: list = []
        self.warnings: list = []
        self.count = 0

    def normalize(self, audit: dict) -> dict:
        """A JSON-safe copy of one audit record with hook command text digested unless show_commands."""
        record = to_plain(audit)
        if record.get("kind") == "hook" and "command" in record:
            command = record.get("command")
            if command is None:
                record.pop("command")
            elif not self.show_commands and not str(command).startswith("sha256:"):
                record.setdefault("command_sha256", command_digest(command).split(":", 1)[1])
                record["command"] = command_digest(command)
        return record

    def add(self, audit: dict, task: str | None = None, host: str | None = None) -> dict:
        record = self.normalize(audit)
        kind = record.get("kind")
        self.count += 1
        where = {k: v for k, v in (("task", task), ("host", host)) if v}
        self.warnings.extend(dict(where, message=str(w)) for w in audit_warnings(record))
        if kind == "run_context":
            self.run_context.update({k: v for k, v in record.items() if k != "kind"})
        elif kind == "key_state":
            state = {k: v for k, v in record.items() if k != "kind"}
            if self.key_before is None:
                self.key_before = state
            self.key_after = state
        elif kind == "attestation":
            self.attestation.append(dict(where, results=record.get("results", []), measurements=record.get("measurements", []),
                                         purpose=record.get("purpose")))
        elif kind in LISTED:
            getattr(self, LISTED[kind]).append(dict(where, **{k: v for k, v in record.items() if k != "kind"}))
        else:
            self.other.append(dict(where, **record))
        return record

    # -- derived ------------------------------------------------------------------------
    def _rollback_hooks(self) -> list:
        """Rollback hooks that ran (not skipped, not only predicted in check mode)."""
        return [h for h in self.hooks if h.get("name") == "rollback" and h.get("outcome") in ("ok", "failed", "timeout")]

    @property
    def rollback(self) -> dict:
        """The rollback of the run: the snapshot restore (native provider) or, with kms_provider=command,
        where the rollback hook is the whole rollback, that hook."""
        if self.rollbacks:
            return self.rollbacks[-1]
        hooks = self._rollback_hooks()
        if hooks:
            last = hooks[-1]
            return {"executed": True, "via": "rollback hook", "outcome": last.get("outcome"), "rc": last.get("rc"),
                    "task": last.get("task"), "host": last.get("host")}
        return {"executed": False}

    @property
    def rollback_executed(self) -> bool:
        return any(_truthy(r.get("executed", False)) for r in self.rollbacks) or bool(self._rollback_hooks())

    @property
    def rollback_failed(self) -> bool:
        for r in self.rollbacks:
            ok = ("ok", "success", "succeeded", "changed", "restored", "already_at_snapshot")
            if _truthy(r.get("executed", False)) and str(r.get("outcome", "ok")).lower() not in ok:
                return True
        return any(h.get("name") == "rollback" and h.get("outcome") in ("failed", "timeout") for h in self.hooks)

    def outcome(self, action: str | None, run_failed: bool) -> str:
        if self.rollback_failed:
            return "failed"
        if self.rollback_executed and (action or "all") != "rollback":
            return "rolled_back"
        return "failed" if run_failed else "success"

    def transition(self) -> dict:
        """What confirms the key moved: the key states read before and after (native providers), or
        with kms_provider=command, where the hooks ARE the rotation, the hooks' own records."""
        if self.run_context.get("provider") == "command":
            return {"evidence": "hooks", "provider": "command",
                    "hooks": [{k: h.get(k) for k in ("name", "outcome", "rc", "duration_ms", "command_sha256")} for h in self.hooks]}
        before, after = self.key_before or {}, self.key_after or {}
        return {"evidence": "key_state", "primary_before": before.get("primary_version"), "primary_after": after.get("primary_version")}

    def summary_fields(self) -> dict:
        before = self.key_before or {}
        after = self.key_after or {}
        ctx = self.run_context
        return {
            "versions": {
                "current": ctx.get("current_version"),
                "next": ctx.get("next_version"),
                "primary_before": before.get("primary_version"),
                "primary_after": after.get("primary_version"),
            },
            "key_state": {"before": self.key_before, "after": self.key_after},
            "allowed_measurements": {
                "before": before.get("allowed_measurements"),
                "after": after.get("allowed_measurements"),
                "target": ctx.get("target_measurements"),
            },
            "attestation": self.attestation,
            "hooks": self.hooks,
            "changes": self.changes,
            "rollback": self.rollback,
            "transition": self.transition(),
            "rollback_executed": self.rollback_executed,
            "probes": self.probes,
            "health": self.health,
            "secret_scan": self.secret_scans,
            "other_audits": self.other,
            "warnings": self.warnings,
            "audit_records": self.count,
            "measurement_labels": ctx.get("measurement_labels") or {},
        }


def audit_warnings(record) -> list:
    """The ``warnings`` of an audit record (a list of strings; anything else holds none)."""
    found = record.get("warnings") if isinstance(record, dict) else None
    return [str(w) for w in found] if isinstance(found, list) else []


def key_results(collectors: dict, key_hosts, host_stats: dict, failed_tasks: list, action: str, aborted: bool) -> list:
    """The per-key results of a run over the inventory group ``kms_keys``: one entry per key host,
    sorted by host, with the same summary fields as a single-key run (read from that host's audits)."""
    keys = []
    for host in sorted(key_hosts):
        if host not in collectors and host not in host_stats:  # a key host the run never reached (--limit)
            continue
        collector = collectors.get(host) or AuditCollector()
        stats = host_stats.get(host) or {}
        failed = aborted or bool(stats.get("failures") or stats.get("unreachable"))
        ctx = collector.run_context
        entry = {"host": host, "key_id": ctx.get("key_id"), "provider": ctx.get("provider"),
                 "outcome": collector.outcome(action, failed),
                 "failed_tasks": [t for t in failed_tasks if t.get("host") == host]}
        entry.update(collector.summary_fields())
        keys.append(entry)
    return keys


def combined_outcome(keys: list, run_failed: bool) -> str:
    """A many-key run fails when any key failed; it is rolled_back when a key was rolled back and none failed."""
    outcomes = {k["outcome"] for k in keys}
    if not keys or "failed" in outcomes:
        return "failed"
    if "rolled_back" in outcomes:
        return "rolled_back"
    return "failed" if run_failed else "success"
