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

from ansible import context
from ansible.plugins.callback import CallbackBase

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.format import to_plain
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._evidence_record import OPTION_DEFAULTS, RunSettings, TaskRef, truthy
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._evidence_events import is_censored
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._evidence_recorder import EvidenceRecorder
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._run_summary import inventory_enclave_names, inventory_key_hosts

# Inventory hosts whose variables are read for secrets at play start (all of them up to this).
_MAX_INVENTORY_HOSTS = 1000


def _parts(result):
    """(result dict, task, host) for CallbackTaskResult (2.19+) and TaskResult (older cores)."""
    data = getattr(result, "result", None)
    if data is None or not hasattr(data, "get"):
        data = getattr(result, "_result", None) or {}
    task = getattr(result, "task", None) or getattr(result, "_task", None)
    host = getattr(result, "host", None) or getattr(result, "_host", None)
    return data, task, host


def _task_ref(task) -> TaskRef:
    """What the evidence records of a task. Its action as written: ``resolved_action`` is not read, as
    ansible-core 2.21 warns when a callback samples it at task start or on the final result of a loop."""
    if task is None:
        return TaskRef()
    role = getattr(task, "_role", None)
    return TaskRef(name=task.get_name() if hasattr(task, "get_name") else str(task),
                   action=str(getattr(task, "action", "") or "") or None, uuid=getattr(task, "_uuid", None),
                   no_log=truthy(getattr(task, "no_log", False)),
                   role=None if role is None else getattr(role, "_role_name", None) or str(role))


def _host_name(host):
    return getattr(host, "name", None) or str(host)


class CallbackModule(CallbackBase):
    """Adapts Ansible's events to an EvidenceRecorder (plugins/plugin_utils/_evidence_recorder.py), one per run."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "alfred.tee_kms.evidence"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super().__init__(display=display)
        self._rec = EvidenceRecorder(self._display)
        atexit.register(self._at_exit)

    def _opt(self, name, default=None):
        try:
            value = self.get_option(name)
        except (KeyError, AttributeError):
            return default
        return default if value is None else value

    def _at_exit(self):
        self._rec.abort()

    # ------------------------------------------------------------------ playbook / play / task
    def v2_playbook_on_start(self, playbook):
        if self._rec.finalized or self._rec.decided:
            self._rec = EvidenceRecorder(self._display)
        name = getattr(playbook, "_file_name", None)
        self._rec.record.playbook = os.path.basename(str(name)) if name else None
        self._rec.emit("playbook_start", {"playbook": self._rec.record.playbook}, "INFO", f"PLAYBOOK {self._rec.record.playbook}")

    def v2_playbook_on_play_start(self, play):
        if not self._rec.decided:
            self._start(play)
        elif self._rec.active:
            self._rec.learner.play_vars(play)
        name = play.get_name() if hasattr(play, "get_name") else str(play)
        self._rec.emit("play_start", {"play": name, "hosts": to_plain(getattr(play, "hosts", None))}, "INFO", f"PLAY [{name}]")

    def _start(self, play):
        """The first play decides: a run whose extra vars define ``env`` is recorded."""
        try:
            extra = play.get_variable_manager().extra_vars
        except Exception:
            extra = {}
        extra = to_plain(extra) if extra else {}
        if extra.get("env") in (None, ""):
            self._rec.skip("the run defines no env (-e env=...)")
            return
        learner = self._rec.learner
        learner.mapping(dict(os.environ))
        learner.mapping(extra)
        learner.play_vars(play)
        learner.inventory(play, _MAX_INVENTORY_HOSTS)
        options = {name: self._opt(name, default) for name, default in OPTION_DEFAULTS.items()}
        self._rec.start(RunSettings.from_run(extra, options, bool(context.CLIARGS.get("check", False)), getattr(play, "vars", None),
                                             inventory_enclave_names(play), inventory_key_hosts(play)))

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._rec.learner.task_role(task)
        self._rec.learner.task_start(task)
        self._rec.task_start(_task_ref(task))

    def v2_playbook_on_handler_task_start(self, task):
        self._rec.learner.task_start(task)
        self._rec.task_start(_task_ref(task), handler=True, event_type="handler_start")

    def v2_playbook_on_cleanup_task_start(self, task):
        self._rec.learner.task_start(task)
        self._rec.task_start(_task_ref(task), event_type="cleanup_task_start")

    def v2_playbook_on_notify(self, handler, host):
        self._rec.emit("handler_notified", {"handler": handler.get_name(), "host": getattr(host, "name", str(host))})

    def v2_playbook_on_include(self, included_file):
        self._rec.emit("include", {"file": os.path.basename(str(getattr(included_file, "_filename", ""))),
                                   "hosts": [getattr(h, "name", str(h)) for h in getattr(included_file, "_hosts", [])]})

    def v2_playbook_on_no_hosts_matched(self):
        self._rec.emit("no_hosts_matched", {}, "WARNING", "no hosts matched")

    def v2_playbook_on_no_hosts_remaining(self):
        self._rec.emit("no_hosts_remaining", {}, "ERROR", "no hosts remaining")

    def v2_runner_on_start(self, host, task):
        self._rec.runner_start(getattr(task, "_uuid", None), getattr(host, "name", None))

    # ------------------------------------------------------------------ results
    def _result(self, result, status=None, item=False, ignore_errors=False):
        if not self._rec.listening:
            return
        data, task, host = _parts(result)
        data = data if hasattr(data, "get") else {}
        ref = _task_ref(task)
        if status is None:
            status = "changed" if truthy(data.get("changed")) else "ok"
        # Before anything of it is recorded; a censored result's task still carries its rendered arguments.
        self._rec.learner.result({} if is_censored(data, ref) else data, task)
        self._rec.result(data, ref, _host_name(host), status, item, ignore_errors)

    def v2_runner_on_ok(self, result):
        self._result(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, "failed", ignore_errors=ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._result(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._result(result, "unreachable")

    def v2_runner_item_on_ok(self, result):
        self._result(result, item=True)

    def v2_runner_item_on_failed(self, result):
        self._result(result, "failed", item=True)

    def v2_runner_item_on_skipped(self, result):
        self._result(result, "skipped", item=True)

    def v2_runner_on_async_failed(self, result):
        self._result(result, "failed")

    def v2_runner_retry(self, result):
        data, task, host = _parts(result)
        self._rec.emit("retry", {"host": getattr(host, "name", str(host)), "task": task.get_name() if task else None,
                                 "attempts": to_plain(data.get("attempts")), "retries": to_plain(data.get("retries"))})

    # ------------------------------------------------------------------ end of run
    def v2_playbook_on_stats(self, stats):
        hosts = {host: to_plain(stats.summarize(host)) for host in sorted(getattr(stats, "processed", {}) or {})}
        self._rec.stats(hosts, to_plain(getattr(stats, "custom", {}) or {}))
