# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The content of ``summary.json`` (controller only), from the record of a run and how it ended
(docs/evidence.md, "summary.json"). The console summary and report.html are views of it
(``_run_summary.py``, ``_evidence_report.py``).

Private plugin_utils: the API may change without notice between releases.
"""

from __future__ import annotations

import json
import os

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.format import SCHEMA, iso
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._evidence_bundle import public_key_b64
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._run_summary import operator

try:
    from ansible.release import __version__ as ANSIBLE_CORE_VERSION
except ImportError:  # pragma: no cover
    ANSIBLE_CORE_VERSION = "unknown"

COLLECTION = "alfred.tee_kms"
_COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def collection_version() -> str:
    """The collection's version from MANIFEST.json (built) or galaxy.yml (checkout)."""
    manifest = os.path.join(_COLLECTION_ROOT, "MANIFEST.json")
    try:
        with open(manifest, encoding="utf-8") as handle:
            return str(json.load(handle)["collection_info"]["version"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        import yaml

        with open(os.path.join(_COLLECTION_ROOT, "galaxy.yml"), encoding="utf-8") as handle:
            return str(yaml.safe_load(handle)["version"])
    except Exception:
        return "unknown"


def build_summary(record, end) -> dict:
    """``summary.json`` before redaction: run facts, chain head, signature, the audits' fields.

    ``record`` is the run's RunRecord, ``end`` its RunEnd (``_evidence_record.py``). The run context
    audit record (``record.audits.run_context``) wins over what the extra vars said.
    """
    settings, audits, chain, key = record.settings, record.audits, record.chain, record.signing_key
    ctx = audits.run_context
    summary = {
        "schema": SCHEMA,
        "env": settings.env,
        "action": end.action,
        "check_mode": end.check_mode,
        "rehearsal": end.check_mode,
        "provider": ctx.get("provider") or settings.provider or "local",
        "key_id": ctx.get("key_id") or settings.key_id,
        "show_commands": settings.show_commands,
        "outcome": end.outcome,
        "aborted": end.aborted,
        "failed_tasks": record.failed_tasks,
        "started_at": iso(record.started),
        "ended_at": iso(end.ended),
        "duration_ms": end.duration_ms,
        "ansible_core_version": ANSIBLE_CORE_VERSION,
        "collection": COLLECTION,
        "collection_version": collection_version(),
        "playbook": record.playbook,
        "awx": settings.awx,
        "stats": end.host_stats,
        "events": chain.seq + 1,
        "chain_head": {"seq": chain.seq, "hash": chain.head},
        "signed": key is not None,
        "signature_format": "base64 Ed25519 over MANIFEST.sha256" if key is not None else None,
        "signing_public_key": public_key_b64(key) if key is not None else None,
        "signing_error": record.signing_error,
        "evidence_errors": list(record.errors),
        "run_context": ctx,
    }
    summary.update(audits.summary_fields())
    if end.keys is not None:
        _add_keys(summary, end.keys)
    summary.update(enclave_names=settings.enclave_names, operator=operator(settings.awx), allow_no_evidence=settings.allow_no_evidence)
    return summary


def _add_keys(summary: dict, keys: list) -> None:
    """A run over kms_keys: the per-key results; run-level fields that belong to one key say so."""
    summary["keys"] = keys
    summary["key_ids"] = [k.get("key_id") for k in keys]
    providers = sorted({str(k.get("provider")) for k in keys})
    if len(keys) == 1:
        summary.update({"key_id": keys[0].get("key_id"), "provider": keys[0].get("provider") or summary["provider"]})
        return
    summary.update({"key_id": None, "provider": providers[0] if len(providers) == 1 else "mixed"})
    # These describe one key: in a run over several they are in each entry of "keys" only.
    for field in ("versions", "key_state", "allowed_measurements", "transition"):
        summary[field] = None
    rolled = [k["host"] for k in keys if k.get("rollback_executed")]
    summary["rollback"] = {"executed": bool(rolled), "keys": rolled}
