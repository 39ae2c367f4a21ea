# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The evidence of one run (controller only): the bundle it opens at the first play, the events
it writes there, redacted, as they come, and the summary, report, manifest and signature it
finalizes at the end. The evidence callback only hands it plain values
(``_evidence_record.py``); what is secret is learnt by its ``learner`` before anything is written.

Private plugin_utils: the API may change without notice between releases.
"""

from __future__ import annotations

import os
import time

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.printable import escape_controls
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.audit import iter_audits
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.format import (
    EVENTS,
    RUN_LOG,
    SCHEMA,
    SUMMARY,
    EvidenceError,
    iso,
    to_plain,
    utc_now,
)
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.secret_patterns import Redactor
from ansible_collections.alfred.tee_kms.plugins.plugin_utils import _evidence_events as events
from ansible_collections.alfred.tee_kms.plugins.plugin_utils import _evidence_state as evidence_state
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._evidence_audits import AuditCollector, audit_warnings
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._evidence_bundle import (
    ChainWriter,
    create_bundle_dir,
    load_private_key,
    public_key_b64,
    sign_manifest,
    write_json,
    write_manifest,
)
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._evidence_record import RunRecord
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._evidence_report import write_report
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._evidence_secrets import SecretLearner
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._evidence_summary import (
    ANSIBLE_CORE_VERSION,
    COLLECTION,
    build_summary,
    collection_version,
)
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._run_summary import render_summary

# The bundle's path, for the hooks and other processes of the run. Whether this run records
# evidence is not told by the environment (anyone sets it) but by plugin_utils/_evidence_state,
# which the evidence_head lookup reads: playbooks/rotate.yml refuses a live run without a bundle.
ENV_BUNDLE = "ALFRED_EVIDENCE_BUNDLE"
_END_LEVEL = {"success": "INFO", "failed": "ERROR", "rolled_back": "ERROR"}


class EvidenceRecorder:
    """One run: events are queued until its first play decides whether it is recorded (``start`` or
    ``skip``), then written to the bundle until ``stats`` (or ``abort``) finalizes it."""

    def __init__(self, display):
        self._display = display
        self.redactor = Redactor()
        self.learner = SecretLearner(self.redactor)
        self.record = RunRecord()
        self.decided = False
        self.active = False
        self.finalized = False
        self._pending = []
        self._log = None
        self._task_starts = {}

    @property
    def listening(self) -> bool:
        """Whether results still matter: before the first play decides (queued), or into an open bundle."""
        return self.active or not self.decided

    def warn(self, message):
        try:
            # Through the redactor (an exception's text may quote what it failed on), controls escaped.
            self._display.warning(escape_controls(f"alfred.tee_kms.evidence: {self.redactor.redact_text(str(message))}"))
        except Exception:  # pragma: no cover - display gone at interpreter exit
            pass

    # ------------------------------------------------------------------ writing
    def emit(self, event_type, data, level="INFO", message=None):
        ts = utc_now()
        if not self.decided:
            self._pending.append((event_type, data, ts, level, message))
        elif self.active and not self.finalized:
            self._write(event_type, data, ts, level, message)

    def _write(self, event_type, data, ts, level, message):
        try:
            self.record.chain.append(event_type, self.redactor.redact(to_plain(data or {})), ts=iso(ts))
            if message:
                self._log_line(level, message, ts)
        except (OSError, EvidenceError) as exc:
            self.record.errors.append(f"{event_type}: {exc}")
            self.warn(f"Could not record event '{event_type}' in evidence bundle {self.record.bundle}: {exc}")

    def _log_line(self, level, message, ts=None):
        if self._log is None or self._log.closed:
            return
        stamp = iso(ts or utc_now())
        for line in self.redactor.redact_text(str(message)).splitlines() or [""]:
            self._log.write(f"[{stamp}] {level} {line}\n")
        self._log.flush()

    # ------------------------------------------------------------------ start
    def skip(self, cause: str):
        """This run is recorded nowhere, for ``cause`` (the evidence_head lookup reports it)."""
        self.decided = True
        self._pending = []
        evidence_state.not_started(cause)

    def start(self, settings):
        """Open the bundle of a run with ``settings`` (a RunSettings), then write what was queued."""
        self.decided = True
        record = self.record
        record.settings = settings
        record.audits = AuditCollector(show_commands=settings.show_commands)
        env, action = settings.env, settings.action
        try:
            # A rehearsal's bundle says so in its name: "record the newest bundle" never picks a check run.
            record.bundle = create_bundle_dir(settings.evidence_dir, env, action + ("-check" if settings.check_mode else ""), record.started)
            record.chain = ChainWriter(os.path.join(record.bundle, EVENTS), fsync=settings.fsync)
            self._log = open(os.path.join(record.bundle, RUN_LOG), "a", encoding="utf-8", newline="\n")
        except (OSError, EvidenceError) as exc:
            self.warn(f"Could not start the evidence bundle for env '{env}' action '{action}': {exc}")
            self._pending = []
            os.environ.pop(ENV_BUNDLE, None)
            evidence_state.not_started(f"could not create it under {settings.evidence_dir}: {exc}")
            return
        self.active = True
        os.environ[ENV_BUNDLE] = record.bundle
        evidence_state.started(record.bundle)
        if settings.signing_key_path:
            try:
                record.signing_key = load_private_key(settings.signing_key_path)
            except EvidenceError as exc:
                record.signing_error = str(exc)
                self.warn(f"{exc}; the bundle {record.bundle} will not be signed")
        mode = "REHEARSAL (check mode): no change is applied" if settings.check_mode else "live run"
        self._log_line("INFO", f"evidence bundle {record.bundle} for env={env} action={action} ({mode})", record.started)
        if settings.check_mode:
            self._log_line("WARNING", "REHEARSAL: this run is in check mode (--check); nothing was changed", record.started)
        if settings.allow_no_evidence:
            self._log_line("WARNING", "allow_no_evidence=true: this run was allowed to change the key even without an "
                                      "evidence bundle", record.started)
        self._write("run_start", {
            "env": env, "action": action, "check_mode": settings.check_mode, "rehearsal": settings.check_mode,
            "show_commands": settings.show_commands, "allow_no_evidence": settings.allow_no_evidence,
            "provider": settings.provider, "key_id": settings.key_id,
            "ansible_core_version": ANSIBLE_CORE_VERSION, "collection": COLLECTION,
            "collection_version": collection_version(), "awx": settings.awx, "schema": SCHEMA,
            "signing_public_key": public_key_b64(record.signing_key) if record.signing_key else None,
        }, record.started, "INFO", None)
        pending, self._pending = self._pending, []
        for event_type, data, ts, level, message in pending:
            self._write(event_type, data, ts, level, message)

    # ------------------------------------------------------------------ tasks and results
    def task_start(self, task, handler=False, event_type="task_start"):
        data, message = events.task_start(task, handler)
        self.emit(event_type, data, "INFO", message)

    def runner_start(self, task_uuid, host):
        self._task_starts[(task_uuid, host)] = time.monotonic()

    def result(self, data: dict, task, host: str, status: str, item=False, ignore_errors=False):
        """A result of ``task`` (a TaskRef) on ``host``: its event, its audits, its run.log lines and the
        warnings its audits carry. The learner has seen ``data`` already."""
        duration_ms = None
        if not item:
            started = self._task_starts.pop((task.uuid, host), None)
            duration_ms = None if started is None else int((time.monotonic() - started) * 1000)
        settings = self.record.settings
        event = events.result(data, task, host, status, item, ignore_errors, settings.max_output, settings.show_commands, duration_ms)
        audits = []
        if "censored" not in event and not item:  # loop audits are collected once, from the final result
            for audit in iter_audits(data):
                try:
                    audits.append(self.record.add_audit(self.redactor.redact(to_plain(audit)), task.name, host))
                except Exception as exc:  # a malformed audit must not stop recording
                    self.record.errors.append(f"audit from task {task.name!r}: {exc}")
        if audits:
            event["audit"] = audits
        if status in ("failed", "unreachable") and not ignore_errors:
            self.record.failed_tasks.append({"host": host, "task": task.name, "status": status,
                                             "msg": events.clip(event.get("msg") or event.get("censored") or "", settings.max_output)})
        self.emit("item_result" if item else "task_result", event, events.result_level(status, ignore_errors),
                  events.result_message(event, self.redactor.redact_text))
        # What a module asks the operator to read (audit "warnings"): its own WARNING lines in run.log.
        for audit in audits:
            for warning in audit_warnings(audit):
                self.emit("warning", {"host": host, "task": task.name, "message": warning}, "WARNING", f"[{host}] {task.name}: {warning}")

    # ------------------------------------------------------------------ end of run
    def stats(self, hosts: dict, custom: dict):
        """The play recap (``{host: counters}``, custom stats): the last event before the end."""
        if not self.active or self.finalized:
            return
        self.emit("stats", {"hosts": hosts, "custom_stats": custom}, "INFO", events.stats_message(hosts))
        failed = any(s.get("failures", 0) or s.get("unreachable", 0) for s in hosts.values())
        self._finalize(hosts, failed, aborted=False)

    def abort(self):
        """The process exits before the stats: finalize with outcome failed."""
        if self.active and not self.finalized:
            try:
                self._finalize({}, True, aborted=True)
            except Exception:  # pragma: no cover - never raise at interpreter exit
                pass

    def _finalize(self, hosts, run_failed, aborted):
        self.finalized = True
        record = self.record
        end = record.conclude(hosts, run_failed, aborted)
        level = _END_LEVEL[end.outcome]
        data, message = events.end_event(end, record.audits.rollback_executed)
        self._write("end", data, end.ended, level, message)
        if record.chain is None:
            return
        summary = build_summary(record, end)
        try:
            record.chain.close()
            summary = self.redactor.redact(to_plain(summary))
            write_json(os.path.join(record.bundle, SUMMARY), summary)
            write_report(record.bundle, summary)
            self._log_line(level, f"summary written; outcome={end.outcome}; chain head seq={summary['chain_head']['seq']} "
                                  f"hash={summary['chain_head']['hash']}", end.ended)
            self._log.close()
            write_manifest(record.bundle)
            if record.signing_key is not None:
                sign_manifest(record.bundle, record.signing_key)
        except (OSError, EvidenceError) as exc:
            self.warn(f"Could not finalize evidence bundle {record.bundle}: {exc}")
        finally:
            if self._log is not None and not self._log.closed:
                self._log.close()
        # Printed through Display (not a task): it reaches stdout under any stdout callback, AWX's awx_display included.
        try:
            self._display.display(self.redactor.redact_text(render_summary(summary, record.bundle)))
        except Exception as exc:  # pragma: no cover - display gone at interpreter exit
            self.warn(f"Could not print the end-of-run summary of {record.bundle}: {exc}")
