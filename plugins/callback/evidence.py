# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: evidence
type: notification
short_description: Write a tamper-evident, redacted evidence bundle for every rotation run
version_added: 0.1.0
description:
  - Records every rotation run (a run whose extra vars define C(env)) as an evidence bundle
    C(<evidence_dir>/<env>-<action>-<YYYYmmddTHHMMSSZ>/) holding C(run.log), a hash-chained
    C(events.jsonl), C(summary.json), C(MANIFEST.sha256) and, when a signing key is configured,
    C(MANIFEST.sig) (base64 Ed25519 signature over C(MANIFEST.sha256)).
  - Runs without an C(env) extra var are not recorded.
  - It is a notification callback and never replaces the stdout callback, so C(awx_display) (AWX,
    ansible-runner) and any other stdout callback keep working.
  - Only allow-listed fields of task results are recorded; results censored by C(no_log) stay
    censored; hook command text is replaced by its SHA-256 unless O(show_commands) is true;
    values from secret sources (secret-named variables, environment variables and arguments,
    vault-encrypted values and files, templates reading a secret lookup, hook command fragments;
    see docs/evidence.md) in their raw, escaped, URL-encoded, base64 and wrapped forms, and
    credential patterns (AWS keys, PEM private keys, JWTs, bearer and OAuth tokens, password,
    token and header assignments, whatever the value's shape after such a keyword), are redacted.
  - Task results may carry an C(audit) dict (the collection's audit protocol, see docs/evidence.md);
    the callback aggregates them into C(summary.json).
  - The path of the current bundle is exported as environment variable C(ALFRED_EVIDENCE_BUNDLE)
    for hooks and other processes of the run (for example the M(alfred.tee_kms.evidence_verify) module).
    The P(alfred.tee_kms.evidence_head#lookup) lookup learns the bundle from the callback itself, in the memory of
    this C(ansible-playbook) process, which no environment variable can fake.
  - When it cannot start the bundle (for example an C(evidence_dir) that cannot be written), it warns and
    keeps the cause for that lookup; C(playbooks/rotate.yml) then refuses a live run before any change unless the
    extra var C(allow_no_evidence) is true, which the bundle records (C(run.log), C(summary.json)) when there is one.
  - The extra vars C(evidence_dir) and C(show_commands) override the options below; C(env),
    C(rotation_action) (or the deprecated C(action)), C(kms_provider), C(kms_key_id) and C(awx_*) complement the summary.
requirements:
  - Enable it with C(callbacks_enabled = alfred.tee_kms.evidence) in C(ansible.cfg).
  - The Python library C(cryptography) when O(signing_key) is set.
options:
  evidence_dir:
    description:
      - Directory under which bundles are created. A relative path is relative to the current
        working directory of C(ansible-playbook).
      - Overridden by the extra var C(evidence_dir).
    type: str
    default: artifacts/security/rotation
    env:
      - name: ALFRED_EVIDENCE_DIR
    ini:
      - section: alfred_tee_kms_evidence
        key: evidence_dir
  show_commands:
    description:
      - Record hook command text in the evidence. When false (default), hook commands appear only
        as C(sha256:<hex>) digests and the C(cmd) of command results is not recorded.
      - Overridden by the extra var C(show_commands) (C(true)/C(false) strings are accepted).
    type: bool
    default: false
    env:
      - name: ALFRED_EVIDENCE_SHOW_COMMANDS
    ini:
      - section: alfred_tee_kms_evidence
        key: show_commands
  signing_key:
    description:
      - Path of an unencrypted PEM Ed25519 private key. When set, C(MANIFEST.sig) is written.
      - If the key cannot be loaded, the bundle is written unsigned, C(summary.json) says so and a
        warning is displayed.
    type: path
    env:
      - name: ALFRED_EVIDENCE_SIGNING_KEY
    ini:
      - section: alfred_tee_kms_evidence
        key: signing_key
  max_output:
    description:
      - Maximum number of characters kept from each C(stdout), C(stderr) and C(msg) of a result.
    type: int
    default: 16384
    env:
      - name: ALFRED_EVIDENCE_MAX_OUTPUT
    ini:
      - section: alfred_tee_kms_evidence
        key: max_output
  fsync:
    description:
      - C(fsync) every event line (each line is always flushed). Slower; survives a host crash.
    type: bool
    default: false
    env:
      - name: ALFRED_EVIDENCE_FSYNC
    ini:
      - section: alfred_tee_kms_evidence
        key: fsync
notes:
  - Supports ansible-core 2.17 and later (C(CallbackTaskResult) on 2.19+, C(TaskResult) before).
  - The bundle is finalized (summary, manifest, signature) when the playbook's stats are sent;
    if the run aborts before that, it is finalized at process exit with outcome C(failed).
seealso:
  - module: alfred.tee_kms.evidence_verify
  - plugin: alfred.tee_kms.evidence_head
    plugin_type: lookup
"""

import atexit
import os
import time

from ansible import context
from ansible.plugins.callback import CallbackBase

try:
    from ansible.release import __version__ as ANSIBLE_CORE_VERSION
except ImportError:  # pragma: no cover
    ANSIBLE_CORE_VERSION = "unknown"

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.printable import escape_controls
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.audit import iter_audits
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.format import (
    SCHEMA,
    EvidenceError,
    iso,
    to_plain,
    utc_now,
    EVENTS,
    RUN_LOG,
    SUMMARY,
)
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.secret_patterns import Redactor, is_secret_name
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._evidence_bundle import (
    ChainWriter,
    create_bundle_dir,
    load_private_key,
    public_key_b64,
    sign_manifest,
    write_json,
    write_manifest,
)
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._evidence_run import (
    COLLECTION,
    AuditCollector,
    audit_warnings,
    build_summary,
    collection_version,
    combined_outcome,
    describe_audit,
    key_results,
)
from ansible_collections.alfred.tee_kms.plugins.plugin_utils import _evidence_state as evidence_state
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._evidence_report import write_report
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._evidence_secrets import SecretLearner
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._run_summary import (
    inventory_enclave_names,
    inventory_key_hosts,
    operator,
    render_summary,
)

# The bundle's path, for the hooks and other processes of the run. Whether this run records
# evidence is not told by the environment (anyone sets it) but by plugin_utils/_evidence_state,
# which the evidence_head lookup reads: playbooks/rotate.yml refuses a live run without a bundle.
ENV_BUNDLE = "ALFRED_EVIDENCE_BUNDLE"
# Result fields that may be recorded (after redaction). Everything else is dropped.
_RESULT_FIELDS = ("rc", "msg", "stdout", "stderr", "skip_reason", "censored", "attempts", "retries", "failed_when_result", "start", "end", "delta")
_CMD_ACTIONS = ("command", "shell", "raw", "script", "ansible.builtin.command", "ansible.builtin.shell", "ansible.builtin.raw", "ansible.builtin.script")
_LOG_LINES = 40
# Inventory hosts whose variables are read for secrets at play start (all of them up to this).
_MAX_INVENTORY_HOSTS = 1000


def _truthy(value) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    return str(value).strip().lower() in ("1", "true", "yes", "on", "y")


def _parts(result):
    """(result dict, task, host) for CallbackTaskResult (2.19+) and TaskResult (older cores)."""
    data = getattr(result, "result", None)
    if data is None or not hasattr(data, "get"):
        data = getattr(result, "_result", None) or {}
    task = getattr(result, "task", None) or getattr(result, "_task", None)
    host = getattr(result, "host", None) or getattr(result, "_host", None)
    return data, task, host


def _action(task):
    """The task's action as written. ``resolved_action`` is not read: ansible-core 2.21 warns when a
    callback samples it at task start or on the final result of a loop."""
    return str(getattr(task, "action", "") or "") or None if task is not None else None


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "alfred.tee_kms.evidence"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super().__init__(display=display)
        self._reset()
        atexit.register(self._at_exit)

    # ------------------------------------------------------------------ state
    def _reset(self):
        self._decided = False
        self._active = False
        self._finalized = False
        self._bundle = None
        self._chain = None
        self._log = None
        self._pending = []
        self._started = utc_now()
        self._started_mono = time.monotonic()
        self._playbook = None
        self._redactor = Redactor()
        self._learner = SecretLearner(self._redactor)
        self._collector = AuditCollector()
        # A run over the inventory group kms_keys: each key's audits, by key host, besides the run's.
        self._key_hosts = set()
        self._key_collectors = {}
        self._task_starts = {}
        self._roles_seen = set()
        self._failed = []
        self._errors = []
        self._ctx = {}
        self._awx = {}
        self._signing_key = None
        self._signing_error = None
        self._show_commands = False
        self._check_mode = False
        self._allow_no_evidence = False
        self._max_output = 16384
        self._enclave_names = {}

    def _opt(self, name, default=None):
        try:
            value = self.get_option(name)
        except (KeyError, AttributeError):
            return default
        return default if value is None else value

    def _warn(self, message):
        try:
            # Through the redactor (an exception's text may quote what it failed on), controls escaped.
            self._display.warning(escape_controls(f"alfred.tee_kms.evidence: {self._redactor.redact_text(str(message))}"))
        except Exception:  # pragma: no cover - display gone at interpreter exit
            pass

    # ------------------------------------------------------------------ recording
    def _emit(self, event_type, data, level="INFO", message=None):
        ts = utc_now()
        if not self._decided:
            self._pending.append((event_type, data, ts, level, message))
            return
        if not self._active or self._finalized:
            return
        self._write(event_type, data, ts, level, message)

    def _write(self, event_type, data, ts, level, message):
        try:
            record = self._redactor.redact(to_plain(data or {}))
            self._chain.append(event_type, record, ts=iso(ts))
            if message:
                self._log_line(level, message, ts)
        except (OSError, EvidenceError) as exc:
            self._errors.append(f"{event_type}: {exc}")
            self._warn(f"Could not record event '{event_type}' in evidence bundle {self._bundle}: {exc}")

    def _log_line(self, level, message, ts=None):
        if self._log is None or self._log.closed:
            return
        stamp = iso(ts or utc_now())
        for line in self._redactor.redact_text(str(message)).splitlines() or [""]:
            self._log.write(f"[{stamp}] {level} {line}\n")
        self._log.flush()

    def _decide(self, play):
        """Create the bundle on the first play of a run whose extra vars define ``env``."""
        self._decided = True
        try:
            extra = play.get_variable_manager().extra_vars
        except Exception:
            extra = {}
        extra = to_plain(extra) if extra else {}
        env = extra.get("env")
        if env in (None, ""):
            self._pending = []
            evidence_state.not_started("the run defines no env (-e env=...)")
            return
        self._learner.mapping(dict(os.environ))
        self._learner.mapping(extra)
        self._learner.play_vars(play)
        self._add_inventory_vars(play)
        self._enclave_names = inventory_enclave_names(play)
        self._key_hosts = inventory_key_hosts(play)

        self._show_commands = _truthy(extra.get("show_commands", self._opt("show_commands", False)))
        self._allow_no_evidence = _truthy(extra.get("allow_no_evidence", False))
        self._collector = AuditCollector(show_commands=self._show_commands)
        self._check_mode = bool(context.CLIARGS.get("check", False))
        self._max_output = int(self._opt("max_output", 16384) or 16384)
        # -e evidence_dir wins; then a literal play var (playbooks/rotate.yml documents its default
        # there); templated play vars cannot be resolved this early and are ignored.
        play_dir = (getattr(play, "vars", None) or {}).get("evidence_dir")
        if not isinstance(play_dir, str) or "{{" in play_dir or "{%" in play_dir:
            play_dir = None
        evidence_dir = str(extra.get("evidence_dir") or play_dir or self._opt("evidence_dir", "artifacts/security/rotation"))
        evidence_dir = os.path.abspath(os.path.expanduser(evidence_dir))
        action = str(extra.get("rotation_action") or extra.get("action") or "all")  # action: the deprecated name
        self._ctx = {
            "env": str(env),
            "action": action,
            "provider": extra.get("kms_provider"),
            "key_id": extra.get("kms_key_id") or os.environ.get("KMS_KEY_ID"),
            "evidence_dir": evidence_dir,
        }
        self._awx = {
            k: v for k, v in extra.items()
            if (k.startswith("awx_") or k.startswith("tower_")) and not is_secret_name(k)
        }
        try:
            # A rehearsal's bundle says so in its name: "record the newest bundle" never picks a check run.
            self._bundle = create_bundle_dir(evidence_dir, str(env), action + ("-check" if self._check_mode else ""), self._started)
            self._chain = ChainWriter(os.path.join(self._bundle, EVENTS), fsync=bool(self._opt("fsync", False)))
            self._log = open(os.path.join(self._bundle, RUN_LOG), "a", encoding="utf-8", newline="\n")
        except (OSError, EvidenceError) as exc:
            self._warn(f"Could not start the evidence bundle for env '{env}' action '{action}': {exc}")
            self._pending = []
            os.environ.pop(ENV_BUNDLE, None)
            evidence_state.not_started(f"could not create it under {evidence_dir}: {exc}")
            return
        self._active = True
        os.environ[ENV_BUNDLE] = self._bundle
        evidence_state.started(self._bundle)

        key_path = self._opt("signing_key")
        if key_path:
            try:
                self._signing_key = load_private_key(str(key_path))
            except EvidenceError as exc:
                self._signing_error = str(exc)
                self._warn(f"{exc}; the bundle {self._bundle} will not be signed")

        mode = "REHEARSAL (check mode): no change is applied" if self._check_mode else "live run"
        self._log_line("INFO", f"evidence bundle {self._bundle} for env={env} action={action} ({mode})", self._started)
        if self._check_mode:
            self._log_line("WARNING", "REHEARSAL: this run is in check mode (--check); nothing was changed", self._started)
        if self._allow_no_evidence:
            self._log_line("WARNING", "allow_no_evidence=true: this run was allowed to change the key even without an "
                                      "evidence bundle", self._started)
        self._write("run_start", {
            "env": str(env), "action": action, "check_mode": self._check_mode, "rehearsal": self._check_mode,
            "show_commands": self._show_commands, "allow_no_evidence": self._allow_no_evidence,
            "provider": self._ctx["provider"], "key_id": self._ctx["key_id"],
            "ansible_core_version": ANSIBLE_CORE_VERSION, "collection": COLLECTION,
            "collection_version": collection_version(), "awx": self._awx, "schema": SCHEMA,
            "signing_public_key": public_key_b64(self._signing_key) if self._signing_key else None,
        }, self._started, "INFO", None)
        pending, self._pending = self._pending, []
        for event_type, data, ts, level, message in pending:
            self._write(event_type, data, ts, level, message)

    def _add_inventory_vars(self, play):
        """Every variable source the play sees for each inventory host: inventory files, group_vars
        and host_vars (vault-encrypted ones too), play vars and vars_files, roles of the play."""
        try:
            from ansible.template import Templar

            manager = play.get_variable_manager()
            # .hosts, not get_hosts(): the play's batch restricts what get_hosts() returns.
            hosts = list(manager._inventory.hosts.values())[:_MAX_INVENTORY_HOSTS] or [None]
            loader = getattr(play, "_loader", None)
        except Exception:
            return
        for host in hosts:
            try:
                variables = manager.get_vars(play=play, host=host, include_hostvars=False)
            except Exception:
                continue
            self._learner.variables(variables, Templar(loader=loader, variables=variables))

    def _add_role_vars(self, task):
        """vars and defaults of a role the first time one of its tasks starts (include_role included)."""
        role = getattr(task, "_role", None)
        if role is None or id(role) in self._roles_seen:
            return
        self._roles_seen.add(id(role))
        self._learner.role(role)

    # ------------------------------------------------------------------ playbook / play / task
    def v2_playbook_on_start(self, playbook):
        if self._finalized or self._decided:
            self._reset()
        name = getattr(playbook, "_file_name", None)
        self._playbook = os.path.basename(str(name)) if name else None
        self._emit("playbook_start", {"playbook": self._playbook}, "INFO", f"PLAYBOOK {self._playbook}")

    def v2_playbook_on_play_start(self, play):
        if not self._decided:
            self._decide(play)
        elif self._active:
            self._learner.play_vars(play)
        name = play.get_name() if hasattr(play, "get_name") else str(play)
        self._emit("play_start", {"play": name, "hosts": to_plain(getattr(play, "hosts", None))}, "INFO", f"PLAY [{name}]")

    def _task_event(self, task, handler=False, event_type="task_start"):
        name = task.get_name() if hasattr(task, "get_name") else str(task)
        data = {
            "task": name,
            "action": _action(task),
            "task_uuid": getattr(task, "_uuid", None),
            "handler": handler,
            "no_log": _truthy(getattr(task, "no_log", False)),
        }
        role = getattr(task, "_role", None)
        if role is not None:
            data["role"] = getattr(role, "_role_name", None) or str(role)
        self._emit(event_type, data, "INFO", f"{'HANDLER' if handler else 'TASK'} [{name}]")

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._add_role_vars(task)
        self._learner.task_start(task)
        self._task_event(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._learner.task_start(task)
        self._task_event(task, handler=True, event_type="handler_start")

    def v2_playbook_on_cleanup_task_start(self, task):
        self._learner.task_start(task)
        self._task_event(task, event_type="cleanup_task_start")

    def v2_playbook_on_notify(self, handler, host):
        self._emit("handler_notified", {"handler": handler.get_name(), "host": getattr(host, "name", str(host))})

    def v2_playbook_on_include(self, included_file):
        self._emit("include", {"file": os.path.basename(str(getattr(included_file, "_filename", ""))),
                               "hosts": [getattr(h, "name", str(h)) for h in getattr(included_file, "_hosts", [])]})

    def v2_playbook_on_no_hosts_matched(self):
        self._emit("no_hosts_matched", {}, "WARNING", "no hosts matched")

    def v2_playbook_on_no_hosts_remaining(self):
        self._emit("no_hosts_remaining", {}, "ERROR", "no hosts remaining")

    def v2_runner_on_start(self, host, task):
        self._task_starts[(getattr(task, "_uuid", None), getattr(host, "name", None))] = time.monotonic()

    # ------------------------------------------------------------------ results
    def _clip(self, value):
        if not isinstance(value, str):
            value = to_plain(value)
            if not isinstance(value, str):
                return value
        if len(value) > self._max_output:
            return value[: self._max_output] + f"... [truncated {len(value) - self._max_output} chars]"
        return value

    def _result_event(self, result, status, item=False, ignore_errors=False):
        if not self._active and self._decided:
            return
        data, task, host = _parts(result)
        data = data if hasattr(data, "get") else {}
        host_name = getattr(host, "name", None) or str(host)
        task_name = task.get_name() if task is not None and hasattr(task, "get_name") else None
        action = _action(task)
        # Results of no_log tasks arrive censored; censor here too if one ever arrives unredacted.
        no_log = bool(data.get("_ansible_no_log")) or "censored" in data or _truthy(getattr(task, "no_log", False))
        censored = no_log
        changed = _truthy(data.get("changed", False))
        event = {"host": host_name, "task": task_name, "action": action, "status": status, "changed": changed,
                 "task_uuid": getattr(task, "_uuid", None)}
        if status == "failed" and ignore_errors:
            event["ignored"] = True
        if item:
            label = data.get("_ansible_item_label", data.get("item")) if not no_log else "(censored due to no_log)"
            event["item"] = self._clip(to_plain(label))
        else:
            started = self._task_starts.pop((getattr(task, "_uuid", None), host_name), None)
            if started is not None:
                event["duration_ms"] = int((time.monotonic() - started) * 1000)
        # Before anything of it is recorded; a censored result's task still carries its rendered arguments.
        self._learner.result({} if censored else data, task)
        if censored:
            event["censored"] = str(data.get("censored") or "the output has been hidden due to no_log")
        else:
            for field in _RESULT_FIELDS:
                if field in data and data[field] not in (None, ""):
                    event[field] = self._clip(data[field])
            if self._show_commands and "cmd" in data:
                event["cmd"] = self._clip(data["cmd"])
            if isinstance(data.get("results"), list) and not item:
                event["items"] = len(data["results"])
            audits = []
            if not item:  # loop audits are collected once, from the final result
                for audit in iter_audits(data):
                    try:
                        audits.append(self._collector.add(self._redactor.redact(to_plain(audit)), task_name, host_name))
                        if host_name in self._key_hosts:  # the record redacted and normalized once, above
                            self._key_collectors.setdefault(host_name, AuditCollector(show_commands=self._show_commands)).add(
                                audits[-1], task_name, host_name)
                    except Exception as exc:  # a malformed audit must not stop recording
                        self._errors.append(f"audit from task {task_name!r}: {exc}")
            if audits:
                event["audit"] = audits
        if status in ("failed", "unreachable") and not ignore_errors:
            self._failed.append({"host": host_name, "task": task_name, "status": status,
                                 "msg": self._clip(event.get("msg") or event.get("censored") or "")})
        level = {"failed": "ERROR", "unreachable": "ERROR"}.get(status, "INFO")
        if status == "failed" and ignore_errors:
            level = "WARNING"
        label = f" (item={event['item']})" if item else ""
        lines = [f"{status}: [{host_name}] {task_name}{label}" + (f" rc={event['rc']}" if "rc" in event else "")
                 + (f" ({event['duration_ms']} ms)" if "duration_ms" in event else "")]
        if status in ("failed", "unreachable") and event.get("msg"):
            lines.append(f"  msg: {event['msg']}")
        for stream in ("stdout", "stderr"):
            text = event.get(stream)
            if isinstance(text, str) and text:
                # Redacted whole before it is split into log lines: a secret wrapped over lines is one value.
                split = self._redactor.redact_text(text).splitlines()
                for line in split[:_LOG_LINES]:
                    lines.append(f"  {stream}: {line}")
                if len(split) > _LOG_LINES:
                    lines.append(f"  {stream}: ... ({len(split) - _LOG_LINES} more lines in events.jsonl)")
        for audit in event.get("audit", []):
            lines.append("  audit: " + describe_audit(audit))
        self._emit("item_result" if item else "task_result", event, level, "\n".join(lines))
        # What a module asks the operator to read (audit "warnings"): its own WARNING lines in run.log.
        for audit in event.get("audit", []):
            for warning in audit_warnings(audit):
                self._emit("warning", {"host": host_name, "task": task_name, "message": warning}, "WARNING",
                           f"[{host_name}] {task_name}: {warning}")

    def v2_runner_on_ok(self, result):
        data, dummy, dummy = _parts(result)
        self._result_event(result, "changed" if _truthy(data.get("changed")) else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result_event(result, "failed", ignore_errors=ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._result_event(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._result_event(result, "unreachable")

    def v2_runner_item_on_ok(self, result):
        data, dummy, dummy = _parts(result)
        self._result_event(result, "changed" if _truthy(data.get("changed")) else "ok", item=True)

    def v2_runner_item_on_failed(self, result):
        self._result_event(result, "failed", item=True)

    def v2_runner_item_on_skipped(self, result):
        self._result_event(result, "skipped", item=True)

    def v2_runner_retry(self, result):
        data, task, host = _parts(result)
        self._emit("retry", {"host": getattr(host, "name", str(host)), "task": task.get_name() if task else None,
                             "attempts": to_plain(data.get("attempts")), "retries": to_plain(data.get("retries"))})

    def v2_runner_on_async_failed(self, result):
        self._result_event(result, "failed")

    # ------------------------------------------------------------------ end of run
    def v2_playbook_on_stats(self, stats):
        if not self._active or self._finalized:
            return
        hosts = {}
        for host in sorted(getattr(stats, "processed", {}) or {}):
            hosts[host] = to_plain(stats.summarize(host))
        custom = to_plain(getattr(stats, "custom", {}) or {})
        self._emit("stats", {"hosts": hosts, "custom_stats": custom}, "INFO",
                   "STATS " + "; ".join(f"{h}: " + " ".join(f"{k}={v}" for k, v in sorted(s.items())) for h, s in hosts.items()))
        failed = any(s.get("failures", 0) or s.get("unreachable", 0) for s in hosts.values())
        self._finalize(hosts, failed, aborted=False)

    def _at_exit(self):
        if self._active and not self._finalized:
            try:
                self._finalize({}, True, aborted=True)
            except Exception:  # pragma: no cover - never raise at interpreter exit
                pass

    def _finalize(self, hosts, run_failed, aborted):
        self._finalized = True
        ended = utc_now()
        collector = self._collector
        ctx = collector.run_context
        action = str(ctx.get("action") or self._ctx.get("action") or "all")
        keys = key_results(self._key_collectors, self._key_hosts, hosts, self._failed, action, aborted) if self._key_hosts else None
        outcome = collector.outcome(action, run_failed or aborted) if keys is None else combined_outcome(keys, run_failed or aborted)
        check_mode = self._check_mode or _truthy(ctx.get("check_mode", False))
        level = {"success": "INFO", "failed": "ERROR", "rolled_back": "ERROR"}[outcome]
        end_event = {"outcome": outcome, "aborted": aborted, "rollback_executed": collector.rollback_executed,
                     "rehearsal": check_mode, "duration_ms": int((time.monotonic() - self._started_mono) * 1000)}
        message = f"END outcome={outcome}" + (" (run aborted before stats)" if aborted else "")
        if check_mode:
            message += " [REHEARSAL: check mode, nothing changed]"
        self._write("end", end_event, ended, level, message)
        if self._chain is None:
            return
        summary = build_summary(
            collector, cli_ctx=self._ctx, action=action, check_mode=check_mode, outcome=outcome, aborted=aborted,
            failed_tasks=self._failed, started=self._started, ended=ended, duration_ms=end_event["duration_ms"],
            playbook=self._playbook, awx=self._awx, stats=hosts, chain=self._chain, signing_key=self._signing_key,
            signing_error=self._signing_error, evidence_errors=self._errors, show_commands=self._show_commands,
            ansible_core_version=ANSIBLE_CORE_VERSION, keys=keys)
        summary.update(enclave_names=self._enclave_names, operator=operator(self._awx))
        try:
            self._chain.close()
            summary["allow_no_evidence"] = self._allow_no_evidence
            summary = self._redactor.redact(to_plain(summary))
            write_json(os.path.join(self._bundle, SUMMARY), summary)
            write_report(self._bundle, summary)
            self._log_line(level, f"summary written; outcome={outcome}; chain head seq={summary['chain_head']['seq']} "
                                  f"hash={summary['chain_head']['hash']}", ended)
            self._log.close()
            write_manifest(self._bundle)
            if self._signing_key is not None:
                sign_manifest(self._bundle, self._signing_key)
        except (OSError, EvidenceError) as exc:
            self._warn(f"Could not finalize evidence bundle {self._bundle}: {exc}")
        finally:
            if self._log is not None and not self._log.closed:
                self._log.close()
        # Printed through Display (not a task): it reaches stdout under any stdout callback, AWX's awx_display included.
        try:
            self._display.display(self._redactor.redact_text(render_summary(summary, self._bundle)))
        except Exception as exc:  # pragma: no cover - display gone at interpreter exit
            self._warn(f"Could not print the end-of-run summary of {self._bundle}: {exc}")
