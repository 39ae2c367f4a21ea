# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The audit protocol: the records modules return under ``audit`` for the evidence callback.

Private module_utils: the API may change without notice between releases. The record
*shapes* are a contract with the evidence callback and docs/evidence.md ("Audit protocol").

Every kind and its fields are declared once in audit_kinds.py (``KIND_FIELDS``); this module has the
one function that builds each (``build`` for a kind that only picks its fields); modules never write
an audit dict by hand. All values are JSON-safe, without floats and without secrets.
"""

from __future__ import annotations

import functools
import hashlib

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.audit_kinds import KIND_FIELDS

OUTCOMES = ("success", "failed", "rolled_back")


def build(kind: str, source: dict, warnings=()) -> dict:
    """A record of ``kind`` with the fields of KIND_FIELDS that ``source`` has (what a kind declared
    by its table line alone is built with)."""
    return {"kind": kind, **{k: source[k] for k in KIND_FIELDS[kind] if k in source}, **_warnings(warnings)}


def run_context(plan: dict, warnings=()) -> dict:
    """The rotation's inputs (rotation_inputs): env, action, provider, key, versions, target allow-list, the
    run options that loosen a safety rule (``allow_*``) and the plain-http enclave URLs they let through.

    ``warnings`` (here and in the other kinds that take them): what the operator must read; the evidence
    callback writes each one to run.log as a WARNING line and lists them in summary.json."""
    return build("run_context", plan, warnings)


def _warnings(warnings) -> dict:
    return {"warnings": [str(w) for w in warnings]} if warnings else {}


def key_state(public: dict) -> dict:
    """A key's state (the first record of a run is "before", the last "after")."""
    return build("key_state", {k: public[k] for k in KIND_FIELDS["key_state"]})  # every field required


def change(operation: str, key_id: str, before, after, check_mode: bool) -> dict:
    """One change of a key (or of its lock), predicted in check mode."""
    return {"kind": "change", "operation": operation, "key_id": key_id, "before": before, "after": after, "check_mode": check_mode}


def rollback(executed: bool, check_mode: bool, restored_primary, restored_allowed_measurements, before, outcome: str,
             kept_live=(), force_reason=None, refused_claims=(), warnings=()) -> dict:
    """A restore of the snapshot: ``kept_live`` are the measurements of live enclaves (verified evidence)
    kept beside the snapshot's allow-list; ``refused_claims`` the answers whose evidence was refused, with the
    measurement they claimed, which the restore did not keep; ``force_reason`` is the operator's reason
    when the rollback was forced."""
    return {"kind": "rollback", "executed": executed, "check_mode": check_mode, "restored_primary": restored_primary,
            "restored_allowed_measurements": restored_allowed_measurements, "before": before, "outcome": outcome,
            "kept_live_measurements": list(kept_live), "refused_live_claims": [dict(c) for c in refused_claims],
            "forced": force_reason is not None, "force_reason": force_reason, **_warnings(warnings)}


def attestation(results: list, measurements: list, purpose: str | None = None) -> dict:
    """Per-source verification rows (never the raw evidence), the verified measurements and the
    operation purpose (``rotation-preflight``, ``rotation-validate``: which step attested)."""
    return {"kind": "attestation", "results": results, "measurements": measurements, "purpose": purpose}


HOOK_TAIL_LINES = 40  # lines of each output stream a hook record keeps, from the end


def hook(record: dict) -> dict:
    """A hook run: name, outcome, rc, duration, command digest (and text only with show_commands),
    and the last HOOK_TAIL_LINES lines of stdout and stderr (already redacted by the hook runner):
    a validate hook's "smoke-ok" or a failing hook's error is what an auditor needs to see."""
    built = {k: v for k, v in record.items() if k not in ("stdout_lines", "stderr_lines")}
    for stream in ("stdout", "stderr"):
        lines = record.get(f"{stream}_lines")
        if isinstance(lines, list):
            built[f"{stream}_tail"] = [str(line) for line in lines[-HOOK_TAIL_LINES:]]
    return dict(built, kind="hook")


def probe(row: dict) -> dict:
    record = build("probe", row)
    if "warnings" in row:  # as the probe wrote them
        record["warnings"] = row["warnings"]
    return record


def health(name: str, url: str, status, passed: bool) -> dict:
    return {"kind": "health", "name": name, "url": url, "status": status, "passed": passed}


def secret_scan(result: dict) -> dict:
    return build("secret_scan", {k: result[k] for k in KIND_FIELDS["secret_scan"]})


def evidence_verify(result: dict) -> dict:
    """The verification of an evidence bundle (recorded with the other audits of the run)."""
    return build("evidence_verify", {k: result[k] for k in KIND_FIELDS["evidence_verify"]})


# Every declared kind (in the table's order), by the function that builds it: its own constructor
# above, else ``build`` bound to it.
_CONSTRUCTORS = {f.__name__: f for f in (run_context, key_state, attestation, hook, change, rollback, probe, health, secret_scan,
                                         evidence_verify)}
KINDS = {kind: _CONSTRUCTORS.get(kind) or functools.partial(build, kind) for kind in KIND_FIELDS}
AUDIT_KINDS = tuple(KINDS)


def iter_audits(result) -> list[dict]:
    """Every ``audit`` dict of a task result: top-level and inside loop ``results``."""
    found = []
    if not isinstance(result, dict):
        return found
    audit = result.get("audit")
    if isinstance(audit, dict) and isinstance(audit.get("kind"), str):
        found.append(audit)
    elif isinstance(audit, list):
        found.extend(a for a in audit if isinstance(a, dict) and isinstance(a.get("kind"), str))
    items = result.get("results")
    if isinstance(items, list):
        for item in items:
            found.extend(iter_audits(item))
    return found


def command_digest(command) -> str:
    return "sha256:" + hashlib.sha256(str(command).encode("utf-8")).hexdigest()
