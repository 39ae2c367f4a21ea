# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The processes of a run, read from Linux /proc: the controller that runs a module, and whether
a process is still the one that was seen (a pid with its start time survives pid reuse).

Private module_utils: the API may change without notice between releases. Shared by the lock
owner identity (locks.py) and the hook's watch on its controller (hooks.py). Without /proc
(another OS) every function answers "unknown": None.
"""

from __future__ import annotations

import os


def proc_stat(pid: int):
    """(state, parent pid, start time in clock ticks since boot) of a process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
        # The command name (2nd field) may hold spaces and parentheses: the fields follow its last ')'.
        fields = data[data.rindex(b")") + 2:].split()
        return fields[0].decode("ascii"), int(fields[1]), int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def _cmdline(pid: int):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ")
    except OSError:
        return None


def _is_controller(cmdline: bytes) -> bool:
    return b"ansible-playbook" in cmdline or b"ansible-runner" in cmdline


def controller_chain(max_depth: int = 16):
    """(pid, start time) of this process and its ancestors up to the ansible-playbook (or
    ansible-runner) process running it, that one last; None when there is none.

    A module runs in a worker that ansible-playbook forks for each task, and a fork keeps the
    parent's command line: the first ``ansible-playbook`` ancestor is that short-lived worker,
    gone as soon as the task ends. The controller is the process that lives for the whole run,
    so the walk goes on up while the parent is still ansible-playbook.
    """
    chain, found, pid = [], 0, os.getpid()
    for _depth in range(max_depth):
        stat, cmdline = proc_stat(pid), _cmdline(pid)
        if stat is None or cmdline is None:
            break
        chain.append((pid, stat[2]))
        if _is_controller(cmdline):
            found = len(chain)
        elif found:
            break
        pid = stat[1]
        if pid <= 1:
            break
    return chain[:found] or None


def chain_alive(chain) -> bool:
    """False once a process of ``chain`` has exited (a zombie counts as exited; a reused pid too)."""
    for pid, started in chain:
        stat = proc_stat(pid)
        if stat is None or stat[0] in ("Z", "X") or stat[2] != started:
            return False
    return True
