# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Who holds a rotation lock: an owner identity that a later run can check for liveness.

Private module_utils: the API may change without notice between releases. The lock itself
is kept with the key by each provider (``_kms/rules.py`` has the shared conflict rules).
"""

from __future__ import annotations

import getpass
import os
import socket


def _proc_start(pid: int):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return int(fields[1]), int(fields[19])  # ppid, starttime (clock ticks since boot)
    except (OSError, ValueError, IndexError):
        return None


def _controller_process():
    """(pid, starttime) of the ansible-playbook (or ansible-runner) process running us.

    A module runs in a worker that ansible-playbook forks for each task, and a fork keeps
    the parent's command line: the first ``ansible-playbook`` ancestor is that short-lived
    worker, gone as soon as the task ends. The owner must be the process that lives for the
    whole run, so keep walking up while the parent is still ansible-playbook.
    """
    pid = os.getpid()
    found = None
    for dummy in range(16):
        info = _proc_start(pid)
        if info is None:
            break
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ")
        except OSError:
            break
        if b"ansible-playbook" in cmdline or b"ansible-runner" in cmdline:
            found = (pid, info[1])
        elif found:
            break
        pid = info[0]
        if pid <= 1:
            break
    return found


def lock_owner() -> str:
    """``user@host/pid:N/start:T``: unique per run, and lets a later run on the same host
    tell that the holder's process is gone (pid and start time together survive pid reuse)."""
    who = f"{getpass.getuser()}@{socket.gethostname()}"
    proc = _controller_process()
    return f"{who}/pid:{proc[0]}/start:{proc[1]}" if proc else f"{who}/pid:{os.getppid()}"


def holder_is_gone(owner: str) -> bool:
    """True only when the owner ran on this host and its process no longer exists."""
    try:
        who, pid_part, start_part = owner.split("/")
        host = who.split("@", 1)[1]
        pid = int(pid_part.split(":", 1)[1])
        start = int(start_part.split(":", 1)[1])
    except (ValueError, IndexError):
        return False
    if host != socket.gethostname():
        return False
    info = _proc_start(pid)
    return info is None or info[1] != start
