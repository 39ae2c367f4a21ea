# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The AWS rotation lock is exclusive: racing processes against a real moto server."""

from __future__ import annotations

import multiprocessing
import time

import boto3
import pytest

from aws_support import M1, REGION, version_key_ids

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import LockHeldError, ProviderError
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.aws_lock import lock_alias

ROUNDS = 50
TAKEOVER_ROUNDS = 10
# The highest generation the lock read before issue 22 (ten digits): its successor has eleven.
HUGE = 9999999999
# A stale record as a run that died in 2020 left it: recorded times, not a sleep.
GHOST = {"owner": "ghost", "acquired_at": "2020-01-01T00:00:00Z", "expires_at": "2020-01-01T01:00:00Z", "token": "0" * 32}


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


def raw_client(url):
    return boto3.client("kms", region_name=REGION, endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing")


def lock_names(kms, alias) -> list:
    return sorted(a["AliasName"] for a in kms.list_aliases()["Aliases"] if a["AliasName"].startswith(alias + "/tee-kms-lock/"))


def plant_lock(provider, kms, alias, generation, record):
    """A lock alias at ``generation`` on version 1, made by hand; with GHOST's stale record or none."""
    kid = version_key_ids(kms, alias)[1]
    kms.create_alias(AliasName=lock_alias(alias, generation), TargetKeyId=kid)
    if record:
        provider._put_record(kid, provider._tags(kid, "x", "y"), "lock", dict(GHOST, generation=generation), "x", "y")


@pytest.mark.parametrize("record", [False, True], ids=["no_record", "stale_record"])
def test_lock_at_huge_generation_is_broken_like_any_stale_lock(provider_for, strict_kms, alias, record):
    through, kms = provider_for(strict_kms.url), raw_client(strict_kms.url)
    through.create_key(alias, [M1])
    plant_lock(through, kms, alias, HUGE, record)
    through.lock.recordless_wait = 0.5
    with pytest.raises(LockHeldError, match="a stale lock of owner .* retry with break_stale_lock=true"):
        through.acquire_lock(alias, "alice", 600)
    assert through.acquire_lock(alias, "alice", 600, break_stale=True)["owner"] == "alice"
    assert lock_names(kms, alias) == [lock_alias(alias, HUGE + 1)]
    assert through.get_lock(alias)["owner"] == "alice" and through.release_lock(alias, "alice") is True
    assert through.acquire_lock(alias, "bob", 600)["owner"] == "bob"  # free: the next generation, no flag needed
    assert lock_names(kms, alias) == [lock_alias(alias, HUGE + 2)]


def test_two_processes_breaking_a_stale_lock_at_huge_generation_one_wins(provider_for, strict_kms, alias):
    kms = raw_client(strict_kms.url)
    owner = provider_for(strict_kms.url)
    owner.create_key(alias, [M1])

    def first_stale(provider, number):
        if number == 0:
            plant_lock(provider, kms, alias, HUGE, True)
        return number == 0
    _race(provider_for, strict_kms.url, alias, TAKEOVER_ROUNDS, first_stale)
    assert lock_names(kms, alias) == [lock_alias(alias, HUGE + TAKEOVER_ROUNDS)]


def test_lock_at_the_longest_generation_kms_allows_says_so_and_deletes_nothing(provider_for, strict_kms, alias):
    through, kms = provider_for(strict_kms.url), raw_client(strict_kms.url)
    through.create_key(alias, [M1])
    top = int("9" * (256 - len(lock_alias(alias, ""))))  # the alias fills KMS's 256 characters
    plant_lock(through, kms, alias, top, False)
    through.lock.recordless_wait = 0.5
    with pytest.raises(ProviderError, match=f"Could not acquire the rotation lock on key '{alias}': its highest lock alias, "
                                            f"{lock_alias(alias, top)}, is at a generation whose successor would not fit in the "
                                            "256 characters KMS allows for an alias name; .* confirm no rotation of this key is "
                                            f"running, delete the aliases {alias}/tee-kms-lock/<n> and retry"):
        through.acquire_lock(alias, "alice", 600, break_stale=True)
    assert lock_names(kms, alias) == [lock_alias(alias, top)]


def test_lock_alias_targeting_a_kms_key_that_is_no_version_is_a_clear_error(provider, alias, kms):
    provider.create_key(alias, [M1])
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=lock_alias(alias, 5), TargetKeyId=other)
    provider.lock.recordless_wait = 0.5
    with pytest.raises(ProviderError, match=f"Could not acquire the rotation lock on key '{alias}': alias {alias}/tee-kms-lock/5 "
                                            f"targets KMS key {other}, which is not one of its versions"):
        provider.acquire_lock(alias, "alice", 600, break_stale=True)
    assert lock_names(kms, alias) == [lock_alias(alias, 5)]  # never deleted
