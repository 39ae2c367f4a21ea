# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Running the runbook's hook commands with a timeout and captured, redacted output.

Private module_utils: the API may change without notice between releases.

Hooks are shell command lines written by operators (the runbook's ALFRED_ROTATION_*_CMD), so
they run through /bin/sh in their own process group: a timeout stops the whole group, not
only the shell, and a hanging hook can never hold a rotation open past its limit.

Their own session also means the signals of an interrupted run (Ctrl-C, AWX cancel, SIGTERM
to ansible-playbook, which its worker passes on to this module process) never reach them:
the module catches those signals while a hook runs and stops the hook's group itself, so no
hook process keeps changing the system while the operator starts a rollback. Some cores do not
pass a controller's SIGTERM on (ansible-core 2.17 ends its workers and leaves this process
running), so on Linux the module also watches the ansible-playbook process above it and stops
the hook's group when that process is gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.secret_patterns import Redactor, command_fragments
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.processes import chain_alive, controller_chain

OUTPUT_LINES = 50        # lines of stdout/stderr kept, from the end
OUTPUT_BYTES = 1 << 20   # bytes read per stream at most; hooks are not log shippers


# Lines before the kept ones redacted with them: a secret wrapped over lines (base64 -w 64 of a
# 4 KB value is 86 lines) that ends in the kept lines is one value, and none of its lines may stay.
CONTEXT_LINES = 200


def _tail(data: bytes, redactor: Redactor) -> list:
    lines = data[-OUTPUT_BYTES:].decode("utf-8", "replace").splitlines()
    return redactor.redact_text("\n".join(lines[-(OUTPUT_LINES + CONTEXT_LINES):])).splitlines()[-OUTPUT_LINES:]


# The signals that end a run: Ctrl-C, a cancel (SIGTERM) and a closed terminal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(Exception):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signal = signal.Signals(signum).name


@contextlib.contextmanager
def _signals(handler):
    """Set ``handler`` for STOP_SIGNALS for the duration of the block."""
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


@contextlib.contextmanager
def _watch_controller(interval: float = 0.25):
    """While the block runs, interrupt it as a SIGTERM would when the controller above this module
    process exits: nobody is left to read the result, but the hook must not outlive the run."""
    chain = controller_chain()
    if chain is None:
        yield
        return
    done = threading.Event()

    def watch():
        while not done.wait(interval):
            if not chain_alive(chain) and not done.is_set():
                signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)
                return

    watcher = threading.Thread(target=watch, name="controller-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def run_hook(command: str, timeout: int, env: dict | None = None, chdir: str | None = None, secrets=()) -> dict:
    """Run one hook; return rc, outcome (ok|failed|timeout|interrupted), duration_ms and redacted output.

    With outcome ``interrupted`` the result names the ``signal`` that ended the run; the hook's
    whole process group was stopped before returning.
    """
    # The whole command line and its secret fragments: a failing hook often echoes a token or URL it was given.
    redactor = Redactor(known_values=[command, *command_fragments(command), *secrets])
    redactor.add_known_from_mapping(os.environ)
    child_env = dict(os.environ)
    child_env.update({k: str(v) for k, v in (env or {}).items()})
    started = time.monotonic()
    proc, stdout, stderr, interrupted = None, b"", b"", None
    with _signals(_raise_interrupted), _watch_controller():
        try:
            proc = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, cwd=chdir, env=child_env, start_new_session=True)
            stdout, stderr = proc.communicate(timeout=timeout)
            outcome = "ok" if proc.returncode == 0 else "failed"
        except (subprocess.TimeoutExpired, Interrupted) as exc:
            # From here a second Ctrl-C must not cut the stop short and leave the group running.
            for sig in STOP_SIGNALS:
                signal.signal(sig, signal.SIG_IGN)
            outcome = "timeout" if isinstance(exc, subprocess.TimeoutExpired) else "interrupted"
            interrupted = getattr(exc, "signal", None)
            if proc is not None:
                _stop_group(proc)
                stdout, stderr = _remaining_output(proc)
    result = {
        "rc": None if proc is None else proc.returncode,
        "outcome": outcome,
        "duration_ms": int((time.monotonic() - started) * 1000),
        "stdout_lines": _tail(stdout, redactor),
        "stderr_lines": _tail(stderr, redactor),
    }
    if interrupted:
        result.update(signal=interrupted, group_stopped=proc is not None)
    return result


def _remaining_output(proc) -> tuple:
    """What the stopped hook wrote, or nothing when a signal cut communicate() in a state it
    cannot resume from: the outcome matters here, not the last lines."""
    try:
        return proc.communicate(timeout=5)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        return b"", b""


def _stop_group(proc) -> None:
    """TERM the hook's process group, then KILL what is left of it after 5 s.

    The group, not only the shell: a child that traps TERM, or outlives a shell that exited,
    is still a hook process.
    """
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        proc.poll()  # reap the shell, or its zombie keeps the group alive
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
