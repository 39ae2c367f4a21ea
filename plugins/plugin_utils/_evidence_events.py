# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The events of an evidence bundle (controller only): the data of each ``events.jsonl`` line and
the ``run.log`` lines beside it, built from plain values (docs/evidence.md, "events.jsonl").

Private plugin_utils: the API may change without notice between releases. Everything here is
redacted later, when the recorder writes it; only what this module picks is recorded at all.
"""

from __future__ import annotations

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.format import to_plain
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._evidence_record import truthy

# Result fields that may be recorded (after redaction). Everything else is dropped.
RESULT_FIELDS = ("rc", "msg", "stdout", "stderr", "skip_reason", "censored", "attempts", "retries", "failed_when_result", "start", "end",
                 "delta")
LOG_LINES = 40  # lines of each output stream run.log shows; events.jsonl keeps the whole (clipped) text
CENSORED = "the output has been hidden due to no_log"


def clip(value, max_output: int):
    """``value`` JSON-safe, a string cut at ``max_output`` characters."""
    if not isinstance(value, str):
        value = to_plain(value)
        if not isinstance(value, str):
            return value
    if len(value) > max_output:
        return value[:max_output] + f"... [truncated {len(value) - max_output} chars]"
    return value


def is_censored(data: dict, task) -> bool:
    """Results of no_log tasks arrive censored; censor here too if one ever arrives unredacted."""
    return bool(data.get("_ansible_no_log")) or "censored" in data or task.no_log


def task_start(task, handler: bool = False) -> tuple:
    """``(data, run.log line)`` of a task, handler or cleanup task that starts."""
    data = {"task": task.name, "action": task.action, "task_uuid": task.uuid, "handler": handler, "no_log": task.no_log}
    if task.role is not None:
        data["role"] = task.role
    return data, f"{'HANDLER' if handler else 'TASK'} [{task.name}]"


def result(data: dict, task, host: str, status: str, item: bool, ignore_errors: bool, max_output: int, show_commands: bool,
           duration_ms=None) -> dict:
    """A ``task_result`` / ``item_result`` without its audits: the allow-listed fields, clipped."""
    censored = is_censored(data, task)
    event = {"host": host, "task": task.name, "action": task.action, "status": status, "changed": truthy(data.get("changed", False)),
             "task_uuid": task.uuid}
    if status == "failed" and ignore_errors:
        event["ignored"] = True
    if item:
        label = data.get("_ansible_item_label", data.get("item")) if not censored else "(censored due to no_log)"
        event["item"] = clip(to_plain(label), max_output)
    elif duration_ms is not None:
        event["duration_ms"] = duration_ms
    if censored:
        event["censored"] = str(data.get("censored") or CENSORED)
        return event
    for name in RESULT_FIELDS:
        if name in data and data[name] not in (None, ""):
            event[name] = clip(data[name], max_output)
    if show_commands and "cmd" in data:
        event["cmd"] = clip(data["cmd"], max_output)
    if isinstance(data.get("results"), list) and not item:
        event["items"] = len(data["results"])
    return event


def result_level(status: str, ignore_errors: bool) -> str:
    if status == "failed" and ignore_errors:
        return "WARNING"
    return {"failed": "ERROR", "unreachable": "ERROR"}.get(status, "INFO")


def result_message(event: dict, redact_text) -> str:
    """The run.log lines of a result: status, output (redacted whole, then split), audits."""
    status = event["status"]
    label = f" (item={event['item']})" if "item" in event else ""
    lines = [f"{status}: [{event['host']}] {event['task']}{label}" + (f" rc={event['rc']}" if "rc" in event else "")
             + (f" ({event['duration_ms']} ms)" if "duration_ms" in event else "")]
    if status in ("failed", "unreachable") and event.get("msg"):
        lines.append(f"  msg: {event['msg']}")
    for stream in ("stdout", "stderr"):
        text = event.get(stream)
        if isinstance(text, str) and text:
            # Redacted whole before it is split into log lines: a secret wrapped over lines is one value.
            split = redact_text(text).splitlines()
            lines.extend(f"  {stream}: {line}" for line in split[:LOG_LINES])
            if len(split) > LOG_LINES:
                lines.append(f"  {stream}: ... ({len(split) - LOG_LINES} more lines in events.jsonl)")
    lines.extend("  audit: " + describe_audit(audit) for audit in event.get("audit", []))
    return "\n".join(lines)


def describe_audit(audit) -> str:
    """One run.log line for an audit record."""
    kind = audit.get("kind")
    if kind == "hook":
        line = (f"hook {audit.get('name')}: {audit.get('outcome')} rc={audit.get('rc')} "
                f"({audit.get('duration_ms')} ms) command {audit.get('command', 'sha256:' + str(audit.get('command_sha256')))}")
        tails = [f"    {stream}: {text}" for stream in ("stdout", "stderr") for text in audit.get(f"{stream}_tail") or []]
        return "\n".join([line] + tails)
    if kind == "change":
        return f"change {audit.get('operation')} on {audit.get('key_id')}: {audit.get('before')} -> {audit.get('after')}"
    if kind == "rollback":
        return f"rollback executed={audit.get('executed')} outcome={audit.get('outcome')} primary={audit.get('restored_primary')}"
    if kind == "attestation":
        res = audit.get("results") or []
        ok = sum(1 for r in res if isinstance(r, dict) and r.get("verified"))
        return f"attestation {ok}/{len(res)} verified"
    if kind == "key_state":
        return f"key {audit.get('key_id')} primary={audit.get('primary_version')} allowed={audit.get('allowed_measurements')}"
    return f"{kind} " + ", ".join(f"{k}={v}" for k, v in sorted(audit.items()) if k != "kind")


def stats_message(hosts: dict) -> str:
    return "STATS " + "; ".join(f"{h}: " + " ".join(f"{k}={v}" for k, v in sorted(s.items())) for h, s in hosts.items())


def end_event(end, rollback_executed: bool) -> tuple:
    """``(data, run.log line)`` of the last event."""
    data = {"outcome": end.outcome, "aborted": end.aborted, "rollback_executed": rollback_executed, "rehearsal": end.check_mode,
            "duration_ms": end.duration_ms}
    message = f"END outcome={end.outcome}" + (" (run aborted before stats)" if end.aborted else "")
    if end.check_mode:
        message += " [REHEARSAL: check mode, nothing changed]"
    return data, message
