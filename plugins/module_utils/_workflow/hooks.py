# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Running the runbook's hook commands with a timeout and captured, redacted output.

Private module_utils: the API may change without notice between releases.

Hooks are shell command lines written by operators (the runbook's ALFRED_ROTATION_*_CMD), so
they run through /bin/sh in their own process group: a timeout stops the whole group, not
only the shell, and a hanging hook can never hold a rotation open past its limit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.secret_patterns import Redactor, command_fragments

OUTPUT_LINES = 50        # lines of stdout/stderr kept, from the end
OUTPUT_BYTES = 1 << 20   # bytes read per stream at most; hooks are not log shippers


def _tail(data: bytes, redactor: Redactor) -> list:
    text = data[-OUTPUT_BYTES:].decode("utf-8", "replace")
    return [redactor.redact_text(line) for line in text.splitlines()[-OUTPUT_LINES:]]


def run_hook(command: str, timeout: int, env: dict | None = None, chdir: str | None = None, secrets=()) -> dict:
    """Run one hook; return rc, outcome (ok|failed|timeout), duration_ms and redacted output."""
    # The whole command line and its secret fragments: a failing hook often echoes a token or URL it was given.
    redactor = Redactor(known_values=[command, *command_fragments(command), *secrets])
    redactor.add_known_from_mapping(os.environ)
    child_env = dict(os.environ)
    child_env.update({k: str(v) for k, v in (env or {}).items()})
    started = time.monotonic()
    proc = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=chdir, env=child_env, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
        outcome = "ok" if proc.returncode == 0 else "failed"
    except subprocess.TimeoutExpired:
        _stop_group(proc)
        stdout, stderr = proc.communicate()
        outcome = "timeout"
    return {
        "rc": proc.returncode,
        "outcome": outcome,
        "duration_ms": int((time.monotonic() - started) * 1000),
        "stdout_lines": _tail(stdout, redactor),
        "stderr_lines": _tail(stderr, redactor),
    }


def _stop_group(proc) -> None:
    """TERM the hook's process group, then KILL it if it does not exit within 5 s."""
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
