# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The AWS rotation lock is exclusive: racing processes against a real moto server."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from aws_support import M1, version_key_ids

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import LockHeldError

ROUNDS = 50
TAKEOVER_ROUNDS = 10


def _racer(build, endpoint, alias, name, jobs, results, barrier):
    """One controller in its own process: acquire when told, report won or the refusal."""
    provider = build(endpoint)
    while True:
        job = jobs.get()
        if job is None:
            return
        barrier.wait(30)
        try:
            provider.acquire_lock(alias, f"{name}-round-{job['round']}", 600, break_stale=job["break_stale"])
            results.put((job["round"], name, "won"))
        except LockHeldError as exc:
            results.put((job["round"], name, f"refused: {exc}"))
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            results.put((job["round"], name, f"error: {type(exc).__name__}: {exc}"))


def _race(provider_for, moto_url, alias, rounds, before_round):
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    queues = {name: ctx.Queue() for name in ("a", "b")}
    procs = [ctx.Process(target=_racer, args=(provider_for, moto_url, alias, name, q, results, barrier), daemon=True)
             for name, q in queues.items()]
    for proc in procs:
        proc.start()
    owner = provider_for(moto_url)
    try:
        for number in range(rounds):
            break_stale = before_round(owner, number)
            for q in queues.values():
                q.put({"round": number, "break_stale": break_stale})
            outcome = dict((name, result) for dummy, name, result in (results.get(timeout=120) for dummy in queues))
            winners = [name for name, result in outcome.items() if result == "won"]
            assert len(winners) == 1, f"round {number}: {outcome}"
            loser = next(result for name, result in outcome.items() if name not in winners)
            assert loser.startswith("refused: "), f"round {number}: {outcome}"
            holder = f"{winners[0]}-round-{number}"
            assert owner.get_lock(alias)["owner"] == holder
            assert owner.release_lock(alias, holder) is True
    finally:
        for q in queues.values():
            q.put(None)
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()


def test_two_processes_racing_for_a_free_lock_one_wins(provider_for, moto_url, provider, alias):
    provider.create_key(alias, [M1])
    _race(provider_for, moto_url, alias, ROUNDS, lambda owner, number: False)


def test_two_processes_breaking_a_stale_lock_one_wins(provider_for, moto_url, provider, alias):
    provider.create_key(alias, [M1])

    def stale(owner, number):
        owner.acquire_lock(alias, f"gone-{number}", 1)
        time.sleep(1.2)
        return True
    _race(provider_for, moto_url, alias, TAKEOVER_ROUNDS, stale)


def test_already_exists_after_a_retried_create_is_never_success(provider_for, provider, alias, proxy):
    provider.create_key(alias, [M1])
    # CreateAlias reaches KMS but the answer is lost; botocore retries and gets AlreadyExists.
    through = provider_for(proxy.url)
    proxy.add("CreateAlias", "drop_after")
    with pytest.raises(LockHeldError, match="another run acquired it at the same moment"):
        through.acquire_lock(alias, "alice", 600)
    # The lock is held by nobody known: nobody gets it without waiting and breaking it.
    provider.lock.recordless_wait = 0.5
    with pytest.raises(LockHeldError, match="stale lock"):
        provider.acquire_lock(alias, "bob", 600)


def test_a_run_acting_on_an_old_view_cannot_take_the_lock(provider, provider_for, moto_url, alias, kms):
    provider.create_key(alias, [M1])
    provider.acquire_lock(alias, "alice", 1)
    time.sleep(1.2)
    old_view = provider._load(alias, "acquire the rotation lock on")[1]["lock"]  # alice's lock, expired
    other = provider_for(moto_url)
    assert other.acquire_lock(alias, "bob", 600, break_stale=True)["owner"] == "bob"
    # A slow run decided on alice's expired lock and now tries to take generation 2 too.
    with pytest.raises(LockHeldError, match="another run acquired it"):
        provider.lock.acquire(alias, old_view, version_key_ids(kms, alias)[1], "carol", 600, True, None)
    # Bob removed generation 1; re-creating it on an old view must lose and must not touch bob's record.
    older = dict(old_view, generation=0, lower={})
    with pytest.raises(LockHeldError, match="another run took it"):
        provider.lock.acquire(alias, older, version_key_ids(kms, alias)[1], "carol", 600, True, None)
    assert provider.get_lock(alias)["owner"] == "bob"
    names = [a["AliasName"] for a in kms.list_aliases()["Aliases"] if a["AliasName"].startswith(alias + "/tee-kms-lock/")]
    assert names == [alias + "/tee-kms-lock/2"]


def test_the_lock_record_is_checked_by_token(provider, provider_for, moto_url, alias):
    provider.create_key(alias, [M1])
    provider.acquire_lock(alias, "alice", 600)
    # Someone overwrites the record (a tag write is last-writer-wins): alice's refresh sees it.
    found = provider._load(alias, "read")[1]["lock"]
    forged = dict(found["record"], token="0" * 32)
    kid = found["kid"]
    provider._put_record(kid, provider._tags(kid, "x", "y"), "lock", forged, "x", "y")
    with pytest.raises(LockHeldError, match="read back is not this run's"):
        provider.lock._confirm(alias, found["record"], "key")
