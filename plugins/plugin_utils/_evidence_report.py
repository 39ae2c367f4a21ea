# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``report.html`` of an evidence bundle (controller only): one self-contained page an auditor opens.

Private plugin_utils: the API may change without notice between releases.

The page is rendered from the redacted ``summary.json`` content, before the manifest is written,
so the manifest (and its signature) covers it like any other file. It loads nothing: no script,
no external style, image or font, and a Content-Security-Policy that forbids every fetch. Every
value is HTML-escaped: enclave names, measurement labels and hook output come from operators
and enclaves, not from this code.
"""

from __future__ import annotations

import html
import os

from ansible_collections.alfred.tee_kms.plugins.plugin_utils._evidence_bundle import write_text
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._run_summary import (
    allowlist_diff,
    attestation_by_enclave,
    attestation_steps,
    failure_cause,
    mode,
    probe_status,
    rollback_line,
    versions,
)

REPORT = "report.html"

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #bbb;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#eee}td{max-width:36em}code,pre{font:12px/1.35 ui-monospace,monospace}code{word-break:break-all}
pre{background:#f6f6f6;padding:.5em;white-space:pre-wrap}
.LIVE{color:#064}.REHEARSAL{color:#a60}.success{color:#064}.failed,.FAILED,.rolled_back,.refused{color:#b00}
"""


def _refused_claims(rollback: dict) -> str:
    return "; ".join(f"{c.get('measurement')} ({c.get('source')}: {c.get('reason')})" for c in rollback.get("refused_live_claims") or []) or "-"


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _table(table_id: str, headers: list, rows: list) -> str:
    """A table; every cell is escaped text, or a ``("html", markup)`` pair built here from escaped parts."""
    out = [f'<table id="{table_id}"><thead><tr>' + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr></thead><tbody>"]
    for row in rows:
        cells = []
        for cell in row:
            cells.append(cell[1] if isinstance(cell, tuple) and cell[0] == "html" else _e(cell))
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    if not rows:
        out.append(f'<tr><td colspan="{len(headers)}">none</td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


def _measurement(value, label) -> tuple:
    text = f"<code>{_e(value)}</code>"
    return ("html", text + (f" <b>{_e(label)}</b>" if label else ""))


def _header(summary: dict) -> str:
    awx = summary.get("awx") or {}
    head = summary.get("chain_head") or {}
    if summary.get("signed"):
        signature = f"signed (Ed25519 over MANIFEST.sha256, public key {summary.get('signing_public_key')})"
    elif summary.get("signing_error"):
        signature = f"NOT signed: {summary.get('signing_error')}"
    else:
        signature = "not signed (no signing key configured)"
    job = awx.get("awx_job_id") or awx.get("tower_job_id")
    key = summary.get("key_id") or ", ".join(str(k) for k in summary.get("key_ids") or []) or None
    rows = [("Environment", summary.get("env")), ("Key", key), ("Provider", summary.get("provider")),
            ("Action", summary.get("action")), ("Mode", ("html", f'<b class="{mode(summary)}">{mode(summary)}</b>')),
            ("Outcome", ("html", f'<b class="{_e(summary.get("outcome"))}">{_e(summary.get("outcome"))}</b>')),
            ("Cause", failure_cause(summary) or "-"), ("Operator", summary.get("operator") or "-"),
            ("AWX job", f"{job} ({awx.get('awx_job_template_name') or awx.get('tower_job_template_name') or '-'})" if job else "-"),
            ("Started / ended", f"{summary.get('started_at')} / {summary.get('ended_at')}"),
            ("Chain head", f"seq {head.get('seq')} sha256 {head.get('hash')}"), ("Signature", signature),
            ("Collection", f"{summary.get('collection')} {summary.get('collection_version')}, ansible-core {summary.get('ansible_core_version')}")]
    return _table("run", ["Fact", "Value"], rows)


def _timeline(summary: dict) -> list:
    """The key's primary version through the run: before, each version change, the rollback, after."""
    v = versions(summary)
    rows = [("before", v["before"], "")]
    for change in summary.get("changes") or []:
        operation = change.get("operation")
        if operation in ("create_version", "set_primary", "set_version_state"):
            after = change.get("after") or {}
            detail = "predicted (check mode)" if change.get("check_mode") else ""
            rows.append((operation, after.get("primary_version") if isinstance(after, dict) else after, detail))
    rollback = summary.get("rollback") or {}
    if rollback.get("executed") or rollback.get("outcome") == "would_restore":
        rows.append(("rollback", rollback.get("restored_primary", "-"), rollback_line(summary)))
    rows.append(("after", v["after"], v.get("note") or ""))
    return rows


def _attestation(summary: dict, suffix: str = "") -> str:
    steps = attestation_steps(summary)
    headers = ["Enclave", "URL"] + [f"{step}: {what}" for step in steps for what in ("measurement", "result")]
    rows = []
    for enclave in attestation_by_enclave(summary):
        row = [enclave["enclave"], enclave["source"]]
        for step in steps:
            cell = enclave["steps"].get(step)
            if cell is None:
                row += ["-", "not attested"]
                continue
            row += [_measurement(cell["measurement"], cell["label"]) if cell["measurement"] else "-",
                    ("html", f'<span class="{"verified" if cell["verified"] else "refused"}">{_e(cell["reason"])}</span>')]
        rows.append(row)
    return _table("attestation" + suffix, headers, rows)


def _hooks(summary: dict, suffix: str = "") -> str:
    parts = [_table("hooks" + suffix, ["Hook", "Outcome", "rc", "Duration (ms)", "Command"],
                    [(h.get("name"), h.get("outcome"), h.get("rc"), h.get("duration_ms"), h.get("command") or h.get("command_sha256"))
                     for h in summary.get("hooks") or []])]
    for hook in summary.get("hooks") or []:
        for stream in ("stdout", "stderr"):
            tail = hook.get(f"{stream}_tail")
            if tail:
                parts.append(f'<h3>{_e(hook.get("name"))} hook {stream} (last {len(tail)} lines, redacted)</h3>'
                             f'<pre class="hook-output" data-hook="{_e(hook.get("name"))}" data-stream="{stream}">'
                             + _e("\n".join(str(line) for line in tail)) + "</pre>")
    return "".join(parts)


def _key_sections(summary: dict, suffix: str = "", level: int = 2) -> list:
    """The sections about one key (the whole page of a single-key run; one block per key otherwise).
    ``suffix`` keeps element ids unique when there are several keys."""
    diff = allowlist_diff(summary)
    probes = summary.get("probes") or []
    rollback = summary.get("rollback") or {}

    def h(text):
        return f"<h{level}>{_e(text)}</h{level}>"

    return [
        h("Primary version timeline"), _table("versions" + suffix, ["Step", "Primary version", "Note"], _timeline(summary)),
        h("Allow-list"), _table("allowlist" + suffix, ["Change", "Measurement"],
                                [(r["change"], _measurement(r["measurement"], r["label"])) for r in diff]),
        h("Attestation per enclave"), _attestation(summary, suffix),
        h("Measurement labels"), _table("labels" + suffix, ["Measurement", "Label"],
                                        [(("html", f"<code>{_e(m)}</code>"), name)
                                         for m, name in sorted((summary.get("measurement_labels") or {}).items())]),
        h("Probes"), _table("probes" + suffix, ["Probe", "Status", "Detail"],
                            [(p.get("name"), probe_status(p), p.get("detail")) for p in probes]),
        h("Hooks"), _hooks(summary, suffix),
        h("Rollback"), _table("rollback" + suffix, ["Fact", "Value"], [
            ("Executed", "yes" if rollback.get("executed") else "no"), ("What happened", rollback_line(summary)),
            ("Outcome", rollback.get("outcome") or "-"), ("Restored primary", rollback.get("restored_primary", "-")),
            ("Restored allow-list", ", ".join(rollback.get("restored_allowed_measurements") or []) or "-"),
            ("Kept for live enclaves (verified evidence)", ", ".join(rollback.get("kept_live_measurements") or []) or "-"),
            ("Claimed by refused evidence, not kept", _refused_claims(rollback))]),
        h("Warnings"), _table("warnings" + suffix, ["Task", "Warning"],
                              [(w.get("task"), w.get("message")) for w in summary.get("warnings") or []]),
    ]


def _keys(summary: dict) -> list:
    """A run over several keys: one row per key, then each key's sections."""
    keys = summary.get("keys") or []
    rows = []
    for entry in keys:
        v = versions(entry)
        rows.append((entry.get("host"), entry.get("key_id"), entry.get("provider"),
                     ("html", f'<b class="{_e(entry.get("outcome"))}">{_e(entry.get("outcome"))}</b>'),
                     f"{v['before']} -> {v['after']}", rollback_line(entry), failure_cause(entry) or "-"))
    body = ["<h2>Keys</h2>", _table("keys", ["Host", "Key", "Provider", "Outcome", "Primary version", "Rollback", "Cause"], rows)]
    for index, entry in enumerate(keys):
        body.append(f"<h2>Key {_e(entry.get('host'))} ({_e(entry.get('key_id'))}): {_e(entry.get('outcome'))}</h2>")
        body += _key_sections(dict(entry, enclave_names=summary.get("enclave_names")), f"-{index}", level=3)
    return body


def render_report(summary: dict) -> str:
    many = len(summary.get("keys") or []) > 1
    key = f"{len(summary['keys'])} keys" if many else summary.get("key_id")
    title = f"{summary.get('env')} {summary.get('action')} of {key}: {summary.get('outcome')} ({mode(summary)})"
    body = [f"<h1>{_e(title)}</h1>", "<h2>Run</h2>", _header(summary)] + (_keys(summary) if many else _key_sections(summary))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_report(bundle: str, summary: dict) -> str:
    """Write ``report.html`` into the bundle (before its manifest); return its path."""
    path = os.path.join(bundle, REPORT)
    write_text(path, render_report(summary))
    return path
