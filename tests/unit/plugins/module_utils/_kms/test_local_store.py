# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The crash-safe store behind ``provider: local``: real files and real processes.

Every test that makes a call fail compares the store's bytes before and after.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import stat
import time

import pytest

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import StoreError
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local import LocalKmsProvider
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local_store import LocalStore

from kms_testlib import M1, M2, file_bytes, temp_files

FORK = multiprocessing.get_context("fork")


# --- creation, permissions, atomic replace -------------------------------------------------
def test_new_store_is_0600_even_with_permissive_umask(store_path):
    old = os.umask(0)
    try:
        LocalStore(store_path).mutate("write", lambda keys: keys.update(a={"n": 1}))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(store_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store_path + ".lock").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(store_path)).st_mode) == 0o700
    assert LocalStore(store_path).read() == {"a": {"n": 1}}


def test_missing_store_reads_empty_and_creates_nothing(store_path):
    assert LocalStore(store_path).read() == {}
    assert not os.path.exists(os.path.dirname(store_path))


def test_write_replaces_atomically_and_leaves_no_temp_files(store_path):
    store = LocalStore(store_path)
    store.mutate("write", lambda keys: keys.update(a=1))
    first_inode = os.stat(store_path).st_ino
    store.mutate("write", lambda keys: keys.update(a=2))
    assert os.stat(store_path).st_ino != first_inode  # a new file renamed over the old one
    assert store.read() == {"a": 2}
    assert temp_files(os.path.dirname(store_path)) == []
    doc = json.loads(file_bytes(store_path))
    assert doc["format"] == "alfred.tee_kms.local-store" and doc["version"] == 1 and len(doc["sha256"]) == 64


def test_unchanged_content_is_not_rewritten(store_path):
    store = LocalStore(store_path)
    store.mutate("write", lambda keys: keys.update(a=1))
    before = os.stat(store_path)
    assert store.mutate("write", lambda keys: keys.update(a=1) or "result") == "result"
    after = os.stat(store_path)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_failing_change_writes_nothing(store_path):
    store = LocalStore(store_path)
    store.mutate("write", lambda keys: keys.update(a=1))
    saved = file_bytes(store_path)

    def change(keys):
        keys["a"] = 2
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        store.mutate("write", change)
    assert file_bytes(store_path) == saved
    with pytest.raises(ValueError):
        LocalStore(store_path + "-new").mutate("write", change)
    assert not os.path.exists(store_path + "-new")


def test_stale_temp_files_of_dead_writers_are_removed_but_not_others(store_path):
    store = LocalStore(store_path)
    store.mutate("write", lambda keys: keys.update(a=1))
    directory = os.path.dirname(store_path)
    stale = os.path.join(directory, ".store.json.4242.deadbeef.tmp")
    other_store = os.path.join(directory, ".store.json.other.4242.deadbeef.tmp")
    for path in (stale, other_store):
        with open(path, "w") as handle:
            handle.write("half-written copy")
    store.mutate("write", lambda keys: keys.update(a=2))
    assert not os.path.exists(stale)
    assert os.path.exists(other_store)  # belongs to another store file in the same directory


# --- damaged or unsafe store files: clear message, nothing changed -------------------------
def _seed(store_path):
    provider = LocalKmsProvider(store_path)
    provider.create_key("tokens/refresh", [M1])
    provider.acquire_lock("tokens/refresh", "alice", 600)
    return provider


def _flip_checksummed_byte(path):
    data = bytearray(file_bytes(path))
    doc = json.loads(bytes(data))
    material = doc["keys"]["tokens/refresh"]["versions"][0]["material"].encode()
    at = bytes(data).index(material) + 3
    data[at] = ord("A") if data[at] != ord("A") else ord("B")
    return bytes(data)


def _corrupt(kind, path):
    """Damage the store at ``path``; return the expected cause text."""
    if kind == "garbage":
        with open(path, "wb") as handle:
            handle.write(b"\x00\xff\xfe" + bytes(range(256)))
        return "the file is not valid JSON (truncated or corrupted); restore it from a backup"
    if kind == "flipped_byte":
        data = _flip_checksummed_byte(path)
        with open(path, "wb") as handle:
            handle.write(data)
        return "the content does not match its checksum (edited or damaged); restore it from a backup"
    if kind == "edited_value":
        doc = json.loads(file_bytes(path))
        doc["keys"]["tokens/refresh"]["allowed_measurements"].append(M2)  # an attacker widening the policy
        with open(path, "w") as handle:
            json.dump(doc, handle)
        return "the content does not match its checksum (edited or damaged); restore it from a backup"
    if kind == "truncated_half":
        data = file_bytes(path)
        with open(path, "wb") as handle:
            handle.write(data[: len(data) // 2])
        return "the file is not valid JSON (truncated or corrupted); restore it from a backup"
    if kind == "empty":
        open(path, "wb").close()
        return "the file is empty (truncated); restore it from a backup"
    if kind == "foreign_document":
        with open(path, "w") as handle:
            json.dump({"keys": {}}, handle)
        return "the file is not an alfred.tee_kms.local-store document"
    if kind == "future_version":
        doc = json.loads(file_bytes(path))
        doc["version"] = 2
        with open(path, "w") as handle:
            json.dump(doc, handle)
        return "store version 2 is not supported (expected 1)"
    if kind == "mode_0644":
        os.chmod(path, 0o644)
        return f"its mode is 0644 but key material needs 0600 (owner only); fix it with 'chmod 600 {path}' after checking who could read it"
    if kind == "directory":
        os.unlink(path)
        os.mkdir(path, 0o700)
        return "it is not a regular file"
    if kind == "fifo":
        os.unlink(path)
        os.mkfifo(path, 0o600)  # before the fix, opening it blocked forever
        return "it is not a regular file"
    if kind == "symlink":
        real = path + ".real"
        os.rename(path, real)
        os.symlink(real, path)
        return "it is a symbolic link; point store_path at the real file"
    if kind == "wrong_owner":
        os.chown(path, 4242, 4242)
        return f"it belongs to uid 4242, not to the current user (uid {os.geteuid()})"
    raise AssertionError(kind)


CORRUPTIONS = ["garbage", "flipped_byte", "edited_value", "truncated_half", "empty", "foreign_document",
               "future_version", "mode_0644", "directory", "fifo", "symlink",
               pytest.param("wrong_owner", marks=pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root"))]

# (action named in the message, call)
CALLS = [
    ("read", lambda p: p.describe_key("tokens/refresh")),
    ("read", lambda p: p.get_lock("tokens/refresh")),
    ("read", lambda p: p.get_snapshot("tokens/refresh")),
    ("read", lambda p: p.encrypt("tokens/refresh", b"token", {"purpose": "t"})),
    ("create", lambda p: p.create_key("tokens/other", [M1])),
    ("update attestation trust of", lambda p: p.set_attestation_trust("tokens/refresh", {})),
    ("schedule deletion of", lambda p: p.schedule_key_deletion("tokens/refresh", 7)),
    ("create a version of", lambda p: p.create_version("tokens/refresh", 2)),
    ("promote a version of", lambda p: p.set_primary("tokens/refresh", 1)),
    ("change the state of a version of", lambda p: p.set_version_state("tokens/refresh", 1, "enabled")),
    ("update the allow-list of", lambda p: p.set_allowed_measurements("tokens/refresh", [M2])),
    ("restore", lambda p: p.restore("tokens/refresh", 1, [M1])),
    ("record a snapshot of", lambda p: p.save_snapshot("tokens/refresh", {"primary_version": 1})),
    ("acquire the rotation lock on", lambda p: p.acquire_lock("tokens/refresh", "alice", 60)),
    ("release the rotation lock on", lambda p: p.release_lock("tokens/refresh", "alice")),
]


def _state_of(path):
    st = os.lstat(path)
    content = file_bytes(path) if stat.S_ISREG(st.st_mode) else None
    return stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, content


@pytest.fixture
def deadline():
    """Fail instead of hanging (opening a FIFO used to block forever)."""
    def expire(_signum, _frame):
        raise AssertionError("the call blocked for 10s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_damaged_store_is_refused_by_every_call_and_left_unchanged(store_path, kind, deadline):
    _seed(store_path)
    cause = _corrupt(kind, store_path)
    before = _state_of(store_path)
    before_listing = sorted(os.listdir(os.path.dirname(store_path)))
    provider = LocalKmsProvider(store_path)
    for action, call in CALLS:
        with pytest.raises(StoreError) as info:
            call(provider)
        assert str(info.value) == f"Could not {action} key store '{store_path}': {cause}", action
        assert info.value.code == "store"
        assert _state_of(store_path) == before, f"{action} changed the store"
    assert sorted(os.listdir(os.path.dirname(store_path))) == before_listing


def test_unsafe_lock_file_is_refused_before_writing(store_path):
    provider = _seed(store_path)
    os.chmod(store_path + ".lock", 0o666)
    saved = file_bytes(store_path)
    with pytest.raises(StoreError) as info:
        provider.create_version("tokens/refresh", 2)
    assert str(info.value).startswith(f"Could not create a version of key store '{store_path}.lock': its mode is 0666")
    assert file_bytes(store_path) == saved
    assert provider.describe_key("tokens/refresh")["primary_version"] == 1  # reads need no lock


# --- concurrency: processes --------------------------------------------------------------
PAD = 200_000  # big enough that a write takes a while, so readers and kills land mid-write


def _state(n):
    return {"n": n, "pad": (f"{n:08d}" * (PAD // 8 + 1))[:PAD]}


def _loop_writer(path, seconds):
    store = LocalStore(path)
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
        store.mutate("write", lambda keys, n=n: keys.update(k=_state(n)))


def test_reader_never_sees_a_torn_file_while_a_writer_loops(store_path):
    store = LocalStore(store_path)
    store.mutate("write", lambda keys: keys.update(k=_state(0)))
    writer = FORK.Process(target=_loop_writer, args=(store_path, 1.5))
    writer.start()
    reads, seen = 0, set()
    try:
        while writer.is_alive():
            keys = store.read()  # raises StoreError on a torn or mismatching file
            assert keys["k"] == _state(keys["k"]["n"])
            seen.add(keys["k"]["n"])
            reads += 1
    finally:
        writer.join(10)
    assert writer.exitcode == 0
    assert reads > 10 and len(seen) >= 3, (reads, len(seen))  # reads really overlapped writes


def _create_versions(path, key_id, count):
    provider = LocalKmsProvider(path)
    for version in range(2, count + 2):
        provider.create_version(key_id, version)


def _append_on_same_key(path, key_id, tag, count):
    provider = LocalKmsProvider(path)
    for i in range(count):
        def change(state, backend, i=i):
            state["allowed_measurements"].append(f"{tag}-{i}")
        provider._transaction(key_id, "update the allow-list of", change)


def _run_all(processes):
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert [p.exitcode for p in processes] == [0] * len(processes)


def test_two_processes_writing_different_keys_lose_nothing(store_path):
    provider = LocalKmsProvider(store_path)
    provider.create_key("tokens/a", [M1])
    provider.create_key("tokens/b", [M1])
    _run_all([FORK.Process(target=_create_versions, args=(store_path, key, 200)) for key in ("tokens/a", "tokens/b")])
    for key in ("tokens/a", "tokens/b"):
        state = provider.describe_key(key)
        assert [v["version"] for v in state["versions"]] == list(range(1, 202))
        assert state["primary_version"] == 1
    raw = json.loads(file_bytes(store_path))["keys"]
    materials = [v["material"] for key in raw.values() for v in key["versions"]]
    assert len(set(materials)) == 402  # every version got its own key
    assert temp_files(os.path.dirname(store_path)) == []


def test_two_processes_read_modify_write_the_same_key_serialise(store_path):
    provider = LocalKmsProvider(store_path)
    provider.create_key("tokens/a", [M1])
    _run_all([FORK.Process(target=_append_on_same_key, args=(store_path, "tokens/a", tag, 200)) for tag in ("p", "q")])
    allowed = provider.describe_key("tokens/a")["allowed_measurements"]
    assert len(allowed) == 401
    assert sorted(allowed[1:]) == sorted([f"p-{i}" for i in range(200)] + [f"q-{i}" for i in range(200)])
    for tag in ("p", "q"):  # each process's own updates stay in order
        assert [m for m in allowed if m.startswith(tag + "-")] == [f"{tag}-{i}" for i in range(200)]


def _counting_writer(path, log_path):
    store = LocalStore(path)
    n = store.read().get("k", {}).get("n", 0)
    with open(log_path, "a") as log:
        while True:
            n += 1
            store.mutate("write", lambda keys, n=n: keys.update(k=_state(n)))
            log.write(f"{n}\n")
            log.flush()


def test_writer_killed_at_random_moments_always_leaves_a_committed_state(store_path, tmp_path):
    rng = random.Random(20261125)
    log_path = str(tmp_path / "committed.log")
    open(log_path, "w").close()
    for _round in range(25):
        writer = FORK.Process(target=_counting_writer, args=(store_path, log_path))
        writer.start()
        time.sleep(rng.uniform(0.005, 0.08))
        writer.kill()  # SIGKILL: no cleanup, no finally
        writer.join(10)
        assert writer.exitcode == -9
        with open(log_path) as log:
            lines = log.read().split()
        last_logged = int(lines[-1]) if lines else 0
        keys = LocalStore(store_path).read()  # must parse and match its checksum
        if not keys:
            assert last_logged == 0
            continue
        n = keys["k"]["n"]
        # committed either as last logged, or renamed just before the kill hit the log write
        assert n in (last_logged, last_logged + 1), (n, last_logged)
        assert keys == {"k": _state(n)}
        assert stat.S_IMODE(os.stat(store_path).st_mode) == 0o600
        with open(log_path, "a") as log:  # the state found is committed: the next round starts from it
            log.write(f"{n}\n")
    # the next write cleans up whatever a killed writer left behind
    LocalStore(store_path).mutate("write", lambda keys: keys.update(done=True))
    assert temp_files(os.path.dirname(store_path)) == []
    assert LocalStore(store_path).read()["done"] is True
