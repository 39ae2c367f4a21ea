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

from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.rules import lock_conflict
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.processes import controller_chain, proc_stat


def _controller_process():
    """(pid, starttime) of the ansible-playbook (or ansible-runner) process running us."""
    chain = controller_chain()
    return chain[-1] if chain else None


def _boot_id():
    """This boot of the kernel: a pid and a start time mean nothing across a reboot."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def _pid_namespace():
    """The inode of our PID namespace: containers sharing the host's network (and so its
    hostname) each see their own pids, so a pid is only meaningful inside its namespace."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return None


def lock_owner() -> str:
    """``user@host/pid:N/start:T/boot:B/pidns:I``: unique per run, and lets a later run tell
    that the holder's process is gone, but only from the very same host, boot and PID namespace
    (pid and start time together survive pid reuse). Every provider keeps this string as the
    lock's owner record, so each gets the same identity."""
    who = f"{getpass.getuser()}@{socket.gethostname()}"
    proc = _controller_process()
    owner = f"{who}/pid:{proc[0]}/start:{proc[1]}" if proc else f"{who}/pid:{os.getppid()}"
    return f"{owner}/boot:{_boot_id() or 'unknown'}/pidns:{_pid_namespace() or 'unknown'}"


def parse_owner(owner: str) -> dict:
    """The fields of a lock_owner() string ({} for any other owner, such as one set by hand)."""
    head, sep, rest = str(owner).partition("/")
    if not sep or "@" not in head:
        return {}
    fields = {"user": head.split("@", 1)[0], "host": head.split("@", 1)[1]}
    for part in rest.split("/"):
        name, sep, value = part.partition(":")
        if not sep or name in fields:
            return {}
        fields[name] = value
    return fields


def holder_is_gone(owner: str) -> bool:
    """True only when the owner ran on this host, in this boot and PID namespace, and its
    process no longer exists. Anything less (an owner of another container with the same
    hostname, an old owner string without boot and namespace) is not proof: the lock is then
    broken only by an operator (``break_lock_owner``) or after its expiry."""
    fields = parse_owner(owner)
    try:
        pid, start = int(fields["pid"]), int(fields["start"])
    except (KeyError, ValueError):
        return False
    here = {"host": socket.gethostname(), "boot": _boot_id(), "pidns": _pid_namespace()}
    if None in here.values() or any(fields.get(name) != value for name, value in here.items()):
        return False
    info = proc_stat(pid)
    return info is None or info[2] != start


def check_lock_free(key_id: str, lock, owner: str) -> None:
    """Raise LockHeldError when another rotation holds the key's lock, as rotation_lock ``state=checked`` does:
    this run's own lock, and a lock whose holder is provably gone, leave the key free to take."""
    if not lock or lock.get("owner") == owner or holder_is_gone(lock.get("owner", "")):
        return
    error = lock_conflict(key_id, lock, owner, False)
    if error:
        raise error
