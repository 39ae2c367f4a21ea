# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What an operator reads at the end of a run (controller only): the facts of ``summary.json``
turned into views (allow-list diff, attestation per enclave and step, probes, hooks, rollback)
and the plain-text end-of-run summary the evidence callback prints.

Private plugin_utils: the API may change without notice between releases. The HTML report
(``_evidence_report.py``) renders the same views, so console and report never disagree.
"""

from __future__ import annotations

import getpass
import os
import socket

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.printable import escape_controls, escape_controls_in

SHORT_HEX = 12  # measurement prefix shown where the full 96 hex digits would drown the line


# --------------------------------------------------------------------------------------
# Names: enclaves (inventory host names for attested URLs) and measurements (operator labels)
# --------------------------------------------------------------------------------------
def inventory_enclave_names(play) -> dict:
    """``{enclave_url: inventory host name}`` of the play's inventory: attestation rows name the
    enclave an operator knows, not only its URL. Empty when the inventory cannot be read."""
    try:
        # Every host of the inventory, not get_hosts(): the play runs restricted to localhost.
        hosts = list(play.get_variable_manager()._inventory.hosts.values())
    except Exception:  # a callback must never break the run over a display nicety
        return {}
    names = {}
    for host in hosts:
        try:
            url = host.get_vars().get("enclave_url")
        except Exception:
            continue
        if isinstance(url, str) and url:
            names[url] = str(host.get_name())
    return names


def inventory_key_hosts(play) -> set:
    """The hosts of the inventory group ``kms_keys`` (one per key in a many-key run); empty otherwise."""
    try:
        group = play.get_variable_manager()._inventory.groups.get("kms_keys")
        return {str(host.get_name()) for host in group.get_hosts()} if group is not None else set()
    except Exception:  # a callback must never break the run over a display nicety
        return set()


def operator(awx: dict) -> str:
    """Who ran it: the AWX user of a job, else the controller's user@host."""
    if awx.get("awx_user_name") or awx.get("tower_user_name"):
        return f"{awx.get('awx_user_name') or awx.get('tower_user_name')} (AWX)"
    try:
        user = getpass.getuser()
    except Exception:  # no user name for this uid (containers)
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def short(measurement) -> str:
    text = str(measurement or "")
    return text[:SHORT_HEX] if len(text) > SHORT_HEX else text


def labelled(measurement, labels: dict) -> str:
    """Short hex plus the operator's label, e.g. ``b2b2b2b2b2b2 (api-v42)``."""
    label = (labels or {}).get(str(measurement or "").lower())
    return f"{short(measurement)} ({label})" if label else short(measurement)


# --------------------------------------------------------------------------------------
# Views shared by the console summary and report.html
# --------------------------------------------------------------------------------------
def mode(summary: dict) -> str:
    return "REHEARSAL" if summary.get("rehearsal") or summary.get("check_mode") else "LIVE"


def _predicted(summary: dict, rollback_field: str, planned):
    """What a rehearsal would leave: a rollback's restored value, else the rotation's plan."""
    rollback = summary.get("rollback") or {}
    if rollback.get("outcome") == "would_restore":
        return rollback.get(rollback_field)
    return planned


def versions(summary: dict) -> dict:
    """Primary version before and after; with kms_provider=command (no key state read) the planned
    current -> next, marked as carried out by the hooks."""
    v = summary.get("versions") or {}
    if summary.get("provider") == "command":
        return {"before": v.get("current"), "after": v.get("next"), "note": "planned; the hooks carried out the transition"}
    note = None
    would = _predicted(summary, "restored_primary", v.get("next"))
    if mode(summary) == "REHEARSAL" and would not in (None, v.get("primary_after")):
        note = f"rehearsal: would become {would}"
    return {"before": v.get("primary_before"), "after": v.get("primary_after"), "note": note}


def allowlist_diff(summary: dict) -> list:
    """Rows ``{"change": added|removed|kept, "measurement", "label"}``. A live run compares the key's
    allow-list before and after; a rehearsal (nothing changed) and kms_provider=command (no key
    state) compare with the target allow-list, marked ``would_add``/``would_remove``/``target``."""
    allowed = summary.get("allowed_measurements") or {}
    labels = summary.get("measurement_labels") or {}
    before, after = allowed.get("before"), allowed.get("after")
    predicted = mode(summary) == "REHEARSAL" or after is None
    if predicted:
        after = _predicted(summary, "restored_allowed_measurements", allowed.get("target"))
        if after is None:  # nothing planned to change (a rehearsal that stopped early)
            after = before
    if before is None and after is None:
        return []
    before_set, after_set = set(before or []), set(after or [])
    if before is None:  # kms_provider=command: nothing to compare with, the target is what the hooks apply
        return [{"change": "target", "measurement": m, "label": labels.get(m)} for m in sorted(after_set)]
    rows = []
    for m in sorted(before_set | after_set):
        if m in before_set and m in after_set:
            change = "kept"
        elif m in after_set:
            change = "would_add" if predicted else "added"
        else:
            change = "would_remove" if predicted else "removed"
        rows.append({"change": change, "measurement": m, "label": labels.get(m)})
    order = {"added": 0, "would_add": 0, "removed": 1, "would_remove": 1, "kept": 2}
    return sorted(rows, key=lambda r: (order[r["change"]], r["measurement"]))


def _step(entry: dict) -> str:
    purpose = str(entry.get("purpose") or "")
    return purpose[len("rotation-"):] if purpose.startswith("rotation-") else (purpose or str(entry.get("task") or "attestation"))


def attestation_rows(summary: dict) -> list:
    """One row per enclave and attesting step: enclave, step, measurement, verified or the refusal reason."""
    names = summary.get("enclave_names") or {}
    labels = summary.get("measurement_labels") or {}
    rows = []
    for entry in summary.get("attestation") or []:
        for result in entry.get("results") or []:
            if not isinstance(result, dict):
                continue
            source = str(result.get("source") or "")
            rows.append({"enclave": names.get(source, source), "source": source, "step": _step(entry),
                         "measurement": result.get("measurement"), "label": labels.get(str(result.get("measurement") or "")),
                         "verified": bool(result.get("verified")),
                         "reason": "verified" if result.get("verified") else str(result.get("reason") or "not verified")})
    return rows


def attestation_by_enclave(summary: dict) -> list:
    """``[{"enclave", "source", "steps": {step: row}}]``: preflight and validate side by side."""
    table: dict = {}
    for row in attestation_rows(summary):
        table.setdefault(row["source"], {"enclave": row["enclave"], "source": row["source"], "steps": {}})["steps"][row["step"]] = row
    return list(table.values())


def attestation_steps(summary: dict) -> list:
    steps = []
    for row in attestation_rows(summary):
        if row["step"] not in steps:
            steps.append(row["step"])
    return steps


def probe_status(probe: dict) -> str:
    if probe.get("skipped") or probe.get("passed") is None:
        return "skipped"
    return "passed" if probe.get("passed") else "FAILED"


def rollback_line(summary: dict) -> str:
    rollback = summary.get("rollback") or {}
    if not rollback.get("executed"):
        if rollback.get("outcome") == "would_restore":
            return f"not executed (rehearsal: would restore primary {rollback.get('restored_primary')})"
        if rollback.get("outcome") == "already_at_snapshot":
            return "not executed: the key was already at its pre-rotation snapshot"
        return "not executed"
    if rollback.get("outcome") == "already_at_snapshot":
        return "executed: the key was already at its pre-rotation snapshot; the interrupted rotation was closed"
    if rollback.get("via") == "rollback hook":
        return f"executed by the rollback hook: {rollback.get('outcome')} rc={rollback.get('rc')}"
    return f"executed: {rollback.get('outcome')}, primary restored to {rollback.get('restored_primary')}"


def failure_cause(summary: dict):
    failed = summary.get("failed_tasks") or []
    return str(failed[0].get("msg") or failed[0].get("task")) if failed else None


# --------------------------------------------------------------------------------------
# The console summary
# --------------------------------------------------------------------------------------
def _key_lines(summary: dict) -> list:
    """What one key went through: cause, versions, allow-list, attestation, probes, hooks, rollback."""
    labels = summary.get("measurement_labels") or {}
    out = []
    cause = failure_cause(summary)
    if cause:
        out.append(f"  cause: {' '.join(cause.split())}")
    v = versions(summary)
    out.append(f"primary version: {v['before']} -> {v['after']}" + (f" ({v['note']})" if v["note"] else ""))
    diff = allowlist_diff(summary)
    out.append("allow-list:" + ("" if diff else " (not read)"))
    for row in diff:
        sign = {"added": "+", "would_add": "+", "removed": "-", "would_remove": "-"}.get(row["change"], "=")
        out.append(f"  {sign} {labelled(row['measurement'], labels)}  {row['change']}")
    rows = attestation_rows(summary)
    out.append("attestation:" + ("" if rows else " (none)"))
    for row in rows:
        out.append(f"  {row['step']:<10} {row['enclave']}  {labelled(row['measurement'], labels) or '-'}  {row['reason']}")
    probes = summary.get("probes") or []
    out.append("probes:" + ("" if probes else " (none)"))
    for probe in probes:
        out.append(f"  {probe.get('name')}: {probe_status(probe)} - {probe.get('detail')}")
    hooks = summary.get("hooks") or []
    out.append("hooks:" + ("" if hooks else " (none configured)"))
    for hook in hooks:
        out.append(f"  {hook.get('name')}: {hook.get('outcome')} rc={hook.get('rc')} ({hook.get('duration_ms')} ms)")
    if summary.get("provider") == "command":
        out.append("  (kms_provider=command: these hooks are the evidence of the transition)")
    out.append(f"rollback: {rollback_line(summary)}")
    warnings = summary.get("warnings") or []
    if warnings:  # what a module asked the operator to read (run options used, refused answers not protected)
        out.append("warnings:")
        out.extend(f"  {' '.join(str(w.get('message')).split())}" for w in warnings)
    return out


def render_summary(summary: dict, bundle: str) -> str:
    """The end-of-run summary printed on stdout: every fact from ``summary.json`` of ``bundle``.

    Every string of the summary is escaped first (module_utils/_common/printable.py): reasons,
    measurements and probe details quote enclaves and KMS endpoints, and a line feed in one of them
    could forge a summary line, an ESC rewrite the screen.
    """
    summary, bundle = escape_controls_in(summary, lines=False), escape_controls(str(bundle), lines=False)
    head = summary.get("chain_head") or {}
    keys = summary.get("keys") or []
    key = summary.get("key_id") if len(keys) <= 1 else f"{len(keys)} keys"
    out = [f"ALFRED TEE KMS {mode(summary)} SUMMARY " + "*" * 40,
           f"env: {summary.get('env')}  key: {key}  provider: {summary.get('provider')}  "
           f"action: {summary.get('action')}  mode: {mode(summary)}",
           f"outcome: {str(summary.get('outcome')).upper()}" + (" (run aborted)" if summary.get("aborted") else "")]
    if mode(summary) == "REHEARSAL":
        out.append("  REHEARSAL (check mode): nothing was changed; 'would' marks what a live run would do")
    if len(keys) > 1:
        for entry in keys:
            out.append(f"key {entry.get('host')} ({entry.get('key_id')}, {entry.get('provider')}): "
                       f"{str(entry.get('outcome')).upper()}")
            out.extend("  " + line for line in _key_lines(dict(entry, enclave_names=summary.get("enclave_names"))))
    else:
        out.extend(_key_lines(summary))
    out.append(f"evidence: {bundle}")
    out.append(f"chain head: seq {head.get('seq')} sha256 {head.get('hash')}")
    out.append("report: " + bundle.rstrip("/") + "/report.html")
    return "\n".join(out)
