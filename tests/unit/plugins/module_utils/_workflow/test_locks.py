# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lock owner identity and the "holder is provably gone" rule, against real processes."""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import sys

from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow import locks


def _start(pid: int) -> int:
    return int(open(f"/proc/{pid}/stat", encoding="ascii").read().rsplit(")", 1)[1].split()[19])


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _here() -> dict:
    return {"boot": open("/proc/sys/kernel/random/boot_id", encoding="ascii").read().strip(),
            "pidns": str(os.stat("/proc/self/ns/pid").st_ino)}


def _owner(pid, start, boot=None, pidns=None, host=None) -> str:
    here = _here()
    return (f"{getpass.getuser()}@{host or socket.gethostname()}/pid:{pid}/start:{start}"
            f"/boot:{boot or here['boot']}/pidns:{pidns or here['pidns']}")


def test_owner_records_host_pid_boot_and_pid_namespace():
    fields = locks.parse_owner(locks.lock_owner())
    assert fields["host"] == socket.gethostname()
    assert fields["boot"] == _here()["boot"] and fields["pidns"] == _here()["pidns"]
    assert int(fields["pid"]) > 0


def test_dead_holder_on_this_host_boot_and_namespace_is_gone():
    assert locks.holder_is_gone(_owner(_dead_pid(), 1)) is True
    # pid reused by another process: the start time differs
    assert locks.holder_is_gone(_owner(os.getpid(), _start(os.getpid()) + 1)) is True


def test_live_holder_is_not_gone():
    assert locks.holder_is_gone(_owner(os.getpid(), _start(os.getpid()))) is False


def test_live_lock_in_other_pid_namespace_not_taken_over():
    """A container on the host network has our hostname but its own pids: its pid is absent (or
    another process) here, which proves nothing about it."""
    assert locks.holder_is_gone(_owner(_dead_pid(), 1, pidns="4026599999")) is False
    # An owner written without boot and namespace (as before they were recorded) is never proof.
    legacy = f"{getpass.getuser()}@{socket.gethostname()}/pid:{_dead_pid()}/start:1"
    assert locks.holder_is_gone(legacy) is False


def test_holder_of_another_host_or_boot_is_not_gone():
    assert locks.holder_is_gone(_owner(_dead_pid(), 1, host="automation-job-41-x7k2p")) is False
    assert locks.holder_is_gone(_owner(_dead_pid(), 1, boot="00000000-0000-0000-0000-000000000000")) is False


def test_hand_written_owners_are_not_parsed_as_proof():
    for owner in ("alice@ops-1", "crashed-run", "(unknown: the lock record is missing)", "a@b/pid:x/start:1/boot:c/pidns:d",
                  f"a@{socket.gethostname()}/pid:1/pid:2/start:1"):
        assert locks.holder_is_gone(owner) is False
