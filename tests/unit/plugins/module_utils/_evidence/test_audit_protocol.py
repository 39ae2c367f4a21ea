# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The audit protocol: every record kind is declared once in _evidence/audit.py with its
constructor, and no producer builds an audit record by hand."""

from __future__ import annotations

import ast
import functools
import json
from pathlib import Path

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import audit
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.audit_kinds import COMMON_FIELDS, KIND_FIELDS
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._evidence_audits import LISTED, AuditCollector

PLUGINS = Path(audit.__file__).resolve().parents[2]
DOCS = PLUGINS.parent / "docs" / "evidence.md"


def test_every_constructor_builds_its_own_declared_kind():
    samples = {
        "run_context": (dict(env="staging", action="all", provider="p", key_id="k", check_mode=False, show_commands=False,
                             current_version=1, next_version=2, target_measurements=["m"]),),
        "key_state": (dict(key_id="k", primary_version=1, versions=[], allowed_measurements=["m"], extra="dropped"),),
        "change": ("create_key", "k", {}, {"a": 1}, False),
        "rollback": (True, False, 1, ["m"], {}, "restored"),
        "attestation": ([{"source": "s", "verified": True}], ["m"]),
        "hook": ({"name": "stage", "outcome": "ok", "rc": 0, "stdout_lines": ["x"], "stderr_lines": []},),
        "probe": ({"name": "canary", "passed": True, "detail": "d", "ciphertext": "dropped"},),
        "health": ("api", "https://h/healthz", 200, True),
        "secret_scan": ({"by_detector": {}, "total": 0, "new_findings": 0, "samples": []},),
        "evidence_verify": ({"verified": True, "events": 3, "reason": None, "chain_head": {}, "signature_verified": None,
                             "files": []},),
    }
    # A kind declared by its table line alone (built by audit.build) gets a sample from its fields.
    samples.update({kind: ({field: f"v-{field}" for field in KIND_FIELDS[kind]},) for kind, builder in audit.KINDS.items()
                    if isinstance(builder, functools.partial) and kind not in samples})
    assert set(samples) == set(audit.KINDS) == set(audit.AUDIT_KINDS)
    for kind, args in samples.items():
        record = audit.KINDS[kind](*args)
        assert record["kind"] == kind
        json.dumps(record)  # JSON-safe
        assert "dropped" not in json.dumps(record) and "stdout_lines" not in record
        undeclared = set(record) - {"kind", *KIND_FIELDS[kind], *COMMON_FIELDS}
        assert not undeclared, f"{kind} builds fields audit_kinds.KIND_FIELDS does not declare: {undeclared}"


def test_the_kinds_are_the_table_and_a_table_line_alone_builds_its_kind(monkeypatch):
    assert list(audit.KINDS) == list(KIND_FIELDS)
    # What adding a kind to the table gives, before anyone writes a constructor for it.
    monkeypatch.setitem(KIND_FIELDS, "key_state_audit", ("key_id", "version", "state"))
    record = audit.build("key_state_audit", {"key_id": "k", "version": 2, "state": "enabled", "secret": "dropped"})
    assert record == {"kind": "key_state_audit", "key_id": "k", "version": 2, "state": "enabled"}


def test_collector_accepts_every_declared_kind():
    collector = AuditCollector()
    for kind in audit.AUDIT_KINDS:
        collector.add({"kind": kind})
    assert collector.count == len(audit.AUDIT_KINDS)


def test_the_collector_aggregates_declared_kinds_only():
    assert set(LISTED) <= set(KIND_FIELDS), "the collector names kinds audit_kinds.KIND_FIELDS does not declare"
    collector = AuditCollector()
    for kind, attribute in LISTED.items():
        collector.add({"kind": kind, "name": kind}, "t", "h")
        assert getattr(collector, attribute) == [{"task": "t", "host": "h", "name": kind}]
    collector.add({"kind": "evidence_verify", "verified": True})
    assert collector.other == [{"kind": "evidence_verify", "verified": True}]


def test_every_declared_kind_is_documented():
    text = DOCS.read_text(encoding="utf-8")
    missing = [kind for kind in audit.AUDIT_KINDS if f"`{kind}`" not in text]
    assert not missing, f"docs/evidence.md does not name the audit kinds {missing}"


def _hand_built(tree) -> list:
    """Dict literals with a "kind" key, and kind= keywords: audit records built by hand."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "kind" for k in node.keys):
            found.append(node.lineno)
        if isinstance(node, ast.Call) and any(k.arg == "kind" for k in node.keywords):
            found.append(node.lineno)
    return found


def test_no_producer_builds_an_audit_record_by_hand():
    offenders = []
    for path in sorted(PLUGINS.rglob("*.py")):
        if path == Path(audit.__file__).resolve() or "doc_fragments" in path.parts:
            continue
        offenders.extend(f"{path.relative_to(PLUGINS)}:{line}" for line in _hand_built(ast.parse(path.read_text(encoding="utf-8"))))
    assert not offenders, f"audit records built outside _evidence/audit.py: {offenders}"
