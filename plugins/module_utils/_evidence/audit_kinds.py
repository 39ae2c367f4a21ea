# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The audit kinds and their fields: the one table that audit.py builds records from, the
evidence callback checks kinds against, and docs/evidence.md's table of kinds is generated from
(``tools/audit_kinds_doc.py``; a unit test fails when the two differ).

Private module_utils: the API may change without notice between releases. The record *shapes*
are a contract with the evidence callback and docs/evidence.md ("Audit protocol").

Adding a kind is one line in ``KIND_FIELDS``: ``audit.build(kind, source)`` then builds it (or a
constructor of the same name in audit.py, when the record needs more than picking fields), and
the callback records it under ``other_audits`` until it aggregates it somewhere else.
"""

from __future__ import annotations

# kind -> its fields besides "kind", in record order.
KIND_FIELDS = {
    "run_context": ("env", "action", "provider", "key_id", "check_mode", "show_commands", "current_version", "next_version",
                    "target_measurements", "measurement_labels", "allow_http_enclaves", "allow_kms_accepted_only", "http_enclave_urls"),
    "key_state": ("key_id", "primary_version", "versions", "allowed_measurements"),
    "change": ("operation", "key_id", "before", "after", "check_mode"),
    "rollback": ("executed", "check_mode", "restored_primary", "restored_allowed_measurements", "before", "outcome",
                 "kept_live_measurements", "refused_live_claims", "forced", "force_reason"),
    "attestation": ("results", "measurements", "purpose"),
    "hook": ("name", "outcome", "rc", "duration_ms", "command", "command_sha256", "stdout_tail", "stderr_tail", "signal", "group_stopped"),
    "probe": ("name", "passed", "result", "method", "public_token_refused", "detail", "skipped", "accepted_by"),
    "health": ("name", "url", "status", "passed"),
    "secret_scan": ("by_detector", "total", "new_findings"),
    "evidence_verify": ("verified", "events", "reason", "chain_head", "signature_verified"),
}

# Fields any record may carry besides its own (docs/evidence.md, below the table).
COMMON_FIELDS = ("warnings",)

# What a field holds, where its name does not say it (the doc table shows it in parentheses).
FIELD_NOTES = {
    ("change", "check_mode"): "a predicted change in check mode",
    ("attestation", "results"): "one row per source: never the raw evidence",
    ("attestation", "measurements"): "the verified ones",
    ("attestation", "purpose"): "`rotation-preflight`, `rotation-validate`: which step attested",
    ("hook", "command"): "`sha256:<hex>` unless `show_commands`",
    ("hook", "stdout_tail"): "the last 40 lines, redacted",
    ("hook", "stderr_tail"): "the last 40 lines, redacted",
    ("hook", "signal"): "outcome `interrupted`: the signal that ended the run",
    ("hook", "group_stopped"): "outcome `interrupted`: the hook's process group was stopped",
    ("probe", "result"): "where an enclave proved or was refused the decrypt: AWS Recipient flow, Vault",
    ("probe", "method"): "`probe_enclave` or `policy_evaluation`, for `disallowed_denied`",
    ("probe", "public_token_refused"): "Vault `unattested_denied`: a token from the enclave's public endpoint refused at login",
    ("probe", "skipped"): "the probe did not run: check mode",
    ("probe", "accepted_by"): "what accepted a `kms_accepted_only` result that passed",
}
