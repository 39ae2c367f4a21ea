# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rotation lock of the ``aws`` provider: exclusive with nothing but KMS aliases and tags.

Private module_utils: the API may change without notice between releases.

KMS offers one compare-and-set: ``CreateAlias`` fails when the alias exists. Tags are
last-writer-wins and ``DeleteAlias``/``UpdateAlias`` are unconditional, so a lock that is
deleted and re-created (stale takeover) or an ``AlreadyExists`` read as "ours already" lets
two runs in. The lock is therefore a sequence of generations:

- Generation ``g`` is the alias ``<key>/tee-kms-lock/<g>``. Taking the lock, free or stale,
  is creating the alias one above the highest that exists: two runs that saw the same state
  race for the same name and exactly one ``CreateAlias`` succeeds. ``AlreadyExists`` is
  always a lost race (a retried call of our own that did land only makes us lose the lock,
  never share it).
- Generations have no digit cap: ``g + 1`` is always read back as a generation, so a lock
  alias planted at a huge generation is broken like any other stale lock. The only bound is
  KMS's 256-character alias name; a generation whose successor would not fit (no run gets
  there one acquisition at a time) is reported, never worked around by deleting it.
- The holder writes its record (owner, expiry, generation, a random token) as tags on the
  key the alias targets, then reads it back: it owns the lock only if the highest generation
  is still its own and the record read back carries its token.
- The highest generation is never deleted (release marks its record released), so a run
  acting on an old view can only re-create a lower generation, which loses the check above.
  Lower generations are removed by the holder.
- A generation without a record belongs to a run between ``CreateAlias`` and its record
  write. A run must finish that within ``ACQUIRE_DEADLINE`` seconds or give up; a taker sees
  the record missing for ``2 * ACQUIRE_DEADLINE`` before it may break it (with
  break_stale_lock only), so it never breaks a lock whose holder still thinks it owns it.

What no lease can prevent: a holder that keeps working after its own expiry while another
run breaks the stale lock. The TTL must cover a rotation; the evidence records both owners.
"""

from __future__ import annotations

import datetime
import re
import time
import uuid

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import LockHeldError, ProviderError
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms import rules

LOCK_PREFIX = "/tee-kms-lock/"
GENERATION = r"[1-9][0-9]*"
MAX_ALIAS_NAME = 256  # characters, KMS's limit for an alias name
ACQUIRE_DEADLINE = 15.0
PUBLIC_FIELDS = ("owner", "acquired_at", "expires_at")
UNKNOWN_OWNER = "(unknown: the lock record is missing; a run may have died while acquiring it)"
ACQUIRE = "acquire the rotation lock on"


def lock_alias(key_id: str, generation: int) -> str:
    return f"{key_id}{LOCK_PREFIX}{generation}"


def generations(key_id: str, aliases: dict) -> dict:
    """{generation: target key id} of the lock aliases among ``aliases`` (name -> target)."""
    pattern = re.compile("^" + re.escape(key_id + LOCK_PREFIX) + "(" + GENERATION + ")$")
    out = {}
    for name, kid in aliases.items():
        match = pattern.match(name)
        if match:
            out[int(match.group(1))] = kid
    return out


def _iso(value: datetime.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


class AliasLock:
    """Lock operations over a provider's low-level KMS helpers (``_kms``, ``_aliases``,
    ``_tags``, ``_put_record``, ``_delete_alias``; see aws.py)."""

    #: Seconds a missing record is watched before it counts as stale (tests shorten it).
    recordless_wait = 2 * ACQUIRE_DEADLINE

    def __init__(self, provider, read_record, record_tag_keys):
        self.p = provider
        self._read_record = read_record
        self._record_tag_keys = record_tag_keys

    # --- reading ---------------------------------------------------------------------
    def state(self, key_id: str, aliases: dict, tags_of, action: str, obj: str) -> dict:
        """The lock as found: {generation, kid, record (full, or None), lock (public or None)}."""
        gens = generations(key_id, aliases)
        if not gens:
            return {"generation": 0, "kid": None, "record": None, "lock": None, "lower": {}}
        top = max(gens)
        kid = gens[top]
        record = self._read_record(tags_of(kid), "lock")
        if record is not None and record.get("generation") != top:
            record = None  # a record of another generation: the holder of ``top`` has not written yet
        if record is None:
            lock = {"owner": UNKNOWN_OWNER, "acquired_at": "1970-01-01T00:00:00Z", "expires_at": "1970-01-01T00:00:00Z"}
        elif record.get("released"):
            lock = None
        else:
            lock = {k: record[k] for k in PUBLIC_FIELDS}
        return {"generation": top, "kid": kid, "record": record, "lock": lock,
                "lower": {g: k for g, k in gens.items() if g != top}}

    def _read_back(self, key_id, action, obj) -> dict:
        aliases = self.p._aliases(key_id + LOCK_PREFIX, action, obj)
        return self.state(key_id, aliases, lambda kid: self.p._tags(kid, action, obj), action, obj)

    # --- acquiring -------------------------------------------------------------------
    def acquire(self, key_id, found: dict, primary_kid: str, owner: str, ttl_seconds: int,
                break_stale: bool, takeover_from) -> dict:
        obj = f"key '{key_id}'"
        now = _now()
        record = found["record"]
        lock = found["lock"]
        expires = _iso(now + datetime.timedelta(seconds=ttl_seconds))
        if lock and record and record["owner"] == owner:
            # Refresh our own lock in place: same generation and token, later expiry.
            mine = dict(record, expires_at=expires)
            self._write(found["kid"], mine, obj)
            self._confirm(key_id, mine, obj)
            return {k: mine[k] for k in PUBLIC_FIELDS}
        if lock:
            if record is None:
                found = self._wait_for_record(key_id, found, obj)
                record, lock = found["record"], found["lock"]
            if lock and not (takeover_from and lock["owner"] == takeover_from):
                error = rules.lock_conflict(key_id, lock, owner, break_stale, now)
                if error:
                    raise error
        generation = found["generation"] + 1
        name = lock_alias(key_id, generation)
        if len(name) > MAX_ALIAS_NAME:
            raise ProviderError(ACQUIRE, obj, f"its highest lock alias, {lock_alias(key_id, found['generation'])}, is at a generation "
                                f"whose successor would not fit in the {MAX_ALIAS_NAME} characters KMS allows for an alias name; "
                                "alfred.tee_kms adds one generation per acquisition and never gets there, so that alias was made "
                                f"by hand: confirm no rotation of this key is running, delete the aliases {key_id}{LOCK_PREFIX}<n> "
                                "and retry")
        started = time.monotonic()
        try:
            self.p._kms("create_alias", ACQUIRE, obj, AliasName=name, TargetKeyId=primary_kid)
        except ProviderError as exc:
            if "AlreadyExists" not in exc.cause:
                raise
            raise LockHeldError(ACQUIRE, obj, "another run acquired it at the same moment (the lock generation "
                                f"{generation} was created by someone else); retry when that run has finished") from None
        mine = {"owner": owner, "acquired_at": _iso(now), "expires_at": expires, "generation": generation,
                "token": uuid.uuid4().hex}
        # A run acting on an old view may re-create a lower, removed generation: it must not
        # write its record over the holder's, so look before writing.
        if self._read_back(key_id, ACQUIRE, obj)["generation"] != generation:
            self.p._delete_alias(name, ACQUIRE, obj)
            raise LockHeldError(ACQUIRE, obj, "another run took it while this run was deciding; retry when that run has finished")
        self._write(primary_kid, mine, obj)
        if time.monotonic() - started > ACQUIRE_DEADLINE:
            raise LockHeldError(ACQUIRE, obj, f"recording the lock took more than {ACQUIRE_DEADLINE:.0f}s, so another run may "
                                "already count it as abandoned; this run does not hold it. Retry")
        self._confirm(key_id, mine, obj)
        for lower in sorted(found["lower"]) + ([found["generation"]] if found["generation"] else []):
            self.p._delete_alias(lock_alias(key_id, lower), ACQUIRE, obj)
        return {k: mine[k] for k in PUBLIC_FIELDS}

    def _write(self, kid, record, obj):
        self.p._put_record(kid, self.p._tags(kid, ACQUIRE, obj), "lock", record, ACQUIRE, obj)

    def _confirm(self, key_id, mine, obj):
        """Own the lock only if the highest generation is ours and its record carries our token."""
        seen = self._read_back(key_id, ACQUIRE, obj)
        record = seen["record"] or {}
        if seen["generation"] != mine["generation"] or record.get("token") != mine["token"]:
            raise LockHeldError(ACQUIRE, obj, "another run took it at the same moment (the lock record read back is not this "
                                "run's); retry when that run has finished")

    def _wait_for_record(self, key_id, found, obj) -> dict:
        """A generation without a record: its creator may be about to write it. Watch it for
        ``recordless_wait`` seconds; only a record still missing after that is stale."""
        deadline = time.monotonic() + self.recordless_wait
        while time.monotonic() < deadline:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            seen = self._read_back(key_id, ACQUIRE, obj)
            if seen["generation"] != found["generation"] or seen["record"] is not None:
                return seen
        return found

    # --- releasing -------------------------------------------------------------------
    def release(self, key_id, found: dict, owner: str) -> bool:
        action = "release the rotation lock on"
        obj = f"key '{key_id}'"
        lock, record = found["lock"], found["record"]
        if not lock:
            return False
        if record is None or record["owner"] != owner:
            raise LockHeldError(action, obj, f"it is held by another owner ('{lock['owner']}')")
        # The alias of the highest generation stays (see the module notes): releasing is
        # marking its record released, which a later run reads as "free".
        released = dict(record, released=True)
        kid = found["kid"]
        self.p._put_record(kid, self.p._tags(kid, action, obj), "lock", released, action, obj)
        return True
