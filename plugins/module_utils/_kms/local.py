# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``local`` provider: a real software KMS kept in one crash-safe file.

Private module_utils: the API may change without notice between releases.

Each version holds its own AES-256-GCM key. Ciphertexts name their key and version, and
bind the caller's encryption context as associated data, so every enabled version keeps
decrypting after a rotation. Decrypt is granted only to a caller that presents attestation
evidence verified against the key's trust anchors whose measurement is allowed.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import os

from ansible.module_utils.basic import env_fallback

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.trust import normalize_trust
from ansible_collections.alfred.tee_kms.plugins.module_utils._common import deps
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import (
    AccessDeniedError,
    ConflictError,
    InputError,
    LockHeldError,
    NotFoundError,
)
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms import rules
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.base import KmsProvider
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local_store import LocalStore, canonical

CIPHERTEXT_PREFIX = "tkms1"
MAX_PLAINTEXT = 4096  # like KMS Encrypt: tokens and data keys, not bulk data
# The decrypt gate's replay cache of every key of a store lives in this file beside it.
REPLAY_SUFFIX = ".replay"


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _iso(value: datetime.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


class LocalKmsProvider(KmsProvider):
    name = "local"
    argument_spec = dict(
        store_path=dict(type="path", fallback=(env_fallback, ["ALFRED_TEE_KMS_STORE"])),
    )
    requirements = (deps.CRYPTOGRAPHY,)

    @classmethod
    def validate_options(cls, options):
        if not options.get("store_path"):
            raise InputError("use", "the local KMS provider", "store_path is required (or set ALFRED_TEE_KMS_STORE)")

    @classmethod
    def from_options(cls, options):
        return cls(options.get("store_path"))

    @classmethod
    def identity(cls, options, key_id):
        store = options.get("store_path")
        return f"{cls.name}|{os.path.realpath(os.path.expanduser(store)) if store else ''}|{key_id}"

    def __init__(self, store_path: str):
        self.validate_options({"store_path": store_path})
        self.store = LocalStore(store_path)

    # --- helpers ---------------------------------------------------------------------
    def _key(self, keys: dict, key_id: str, action: str, allow_pending: bool = False) -> dict:
        rules.check_key_id(key_id, action)
        state = keys.get(key_id)
        if state is None:
            where = self.store.label if self.store.exists() else f"{self.store.label} (the file does not exist yet)"
            raise NotFoundError(action, f"key '{key_id}'", f"it does not exist in {where}")
        if state.get("pending_deletion_at") and not allow_pending:
            raise ConflictError(action, f"key '{key_id}'", f"it is scheduled for deletion on {state['pending_deletion_at']}")
        return state

    def _mutate(self, action: str, key_id: str, change):
        return self.store.mutate(action, lambda keys: change(self._key(keys, key_id, action)))

    # --- reads -----------------------------------------------------------------------
    def describe_key(self, key_id):
        state = self._key(self.store.read(), key_id, "read", allow_pending=True)
        return {k: v for k, v in state.items() if k != "material"} | {
            "versions": [{k: v for k, v in entry.items() if k != "material"} for entry in state["versions"]]
        }

    # --- key lifecycle ---------------------------------------------------------------
    def create_key(self, key_id, allowed_measurements, measurement_format="sha384", attestation_trust=None, description=None, env=None):
        rules.check_key_id(key_id, "create")
        if not allowed_measurements:
            raise InputError("create", f"key '{key_id}'", "allowed_measurements must not be empty: an empty allow-list locks every enclave out")
        trust = normalize_trust(attestation_trust)
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        def change(keys):
            if key_id in keys:
                raise ConflictError("create", f"key '{key_id}'", "it already exists")
            now = _iso(_now())
            keys[key_id] = {
                "key_id": key_id,
                "description": description or "",
                "env": env,
                "created_at": now,
                "measurement_format": measurement_format,
                "primary_version": 1,
                "versions": [{"version": 1, "state": "enabled", "created_at": now,
                              "material": _b64e(AESGCM.generate_key(bit_length=256))}],
                "allowed_measurements": list(allowed_measurements),
                "attestation_trust": trust,
                "lock": None,
                "snapshot": None,
            }

        self.store.mutate("create", change)
        return self.describe_key(key_id)

    def record_env(self, key_id, env):
        def change(state):
            if state.get("env") not in (None, env):
                raise ConflictError("record the environment of", f"key '{key_id}'", f"it already belongs to env '{state['env']}'")
            state["env"] = env

        self._mutate("record the environment of", key_id, change)

    def set_attestation_trust(self, key_id, attestation_trust):
        trust = normalize_trust(attestation_trust)
        self._mutate("update attestation trust of", key_id, lambda state: state.__setitem__("attestation_trust", trust))

    def schedule_key_deletion(self, key_id, pending_days):
        rules.check_pending_days(pending_days, f"key '{key_id}'")

        def change(state):
            when = _iso(_now() + datetime.timedelta(days=pending_days))
            for entry in state["versions"]:
                if entry["state"] != "destroy_scheduled":
                    entry["state"] = "destroy_scheduled"
                    entry["destroy_after"] = when
            state["pending_deletion_at"] = when

        self._mutate("schedule deletion of", key_id, change)

    # --- versions --------------------------------------------------------------------
    def create_version(self, key_id, version):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        def change(state):
            rules.check_next_version(state, version)
            state["versions"].append({"version": version, "state": "enabled", "created_at": _iso(_now()),
                                      "material": _b64e(AESGCM.generate_key(bit_length=256))})

        self._mutate("create a version of", key_id, change)

    def set_primary(self, key_id, version):
        def change(state):
            rules.check_promote(state, version)
            state["primary_version"] = version

        self._mutate("promote a version of", key_id, change)

    def set_version_state(self, key_id, version, target, pending_days=None):
        if target not in rules.VERSION_STATES:
            raise InputError("change", f"version {version} of key '{key_id}'", f"unknown state '{target}'")
        if target == "destroy_scheduled":
            rules.check_pending_days(pending_days, f"version {version} of key '{key_id}'")

        def change(state):
            rules.check_set_state(state, version, target)
            entry = rules.find_version(state, version, "change")
            entry["state"] = target
            if target == "destroy_scheduled":
                entry["destroy_after"] = _iso(_now() + datetime.timedelta(days=pending_days))
            else:
                entry.pop("destroy_after", None)

        self._mutate("change the state of a version of", key_id, change)

    # --- attestation policy ----------------------------------------------------------
    def set_allowed_measurements(self, key_id, measurements):
        if not measurements:
            raise InputError("update the allow-list of", f"key '{key_id}'", "an empty allow-list would lock every enclave out")
        self._mutate("update the allow-list of", key_id, lambda state: state.__setitem__("allowed_measurements", list(measurements)))

    def restore(self, key_id, primary_version, allowed_measurements):
        if not allowed_measurements:
            raise InputError("restore", f"key '{key_id}'", "the snapshot's allow-list is empty")

        def change(state):
            rules.check_promote(state, primary_version)
            state["primary_version"] = primary_version
            state["allowed_measurements"] = list(allowed_measurements)

        self._mutate("restore", key_id, change)

    # --- data path -------------------------------------------------------------------
    @staticmethod
    def _aad(key_id, version, context) -> bytes:
        return canonical({"key_id": key_id, "version": version, "context": context or {}})

    def encrypt(self, key_id, plaintext, context, version=None):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not isinstance(plaintext, bytes) or not 0 < len(plaintext) <= MAX_PLAINTEXT:
            raise InputError("encrypt", f"data under key '{key_id}'", f"plaintext must be 1-{MAX_PLAINTEXT} bytes")
        state = self._key(self.store.read(), key_id, "encrypt")
        version = state["primary_version"] if version is None else version
        entry = rules.find_version(state, version, "encrypt")
        if entry["state"] != "enabled":
            raise ConflictError("encrypt", f"data under version {version} of key '{key_id}'", f"version {version} is {entry['state']}")
        nonce = os.urandom(12)
        sealed = AESGCM(_b64d(entry["material"])).encrypt(nonce, plaintext, self._aad(key_id, version, context))
        header = _b64e(json.dumps({"k": key_id, "v": version}, separators=(",", ":")).encode("utf-8"))
        return ".".join((CIPHERTEXT_PREFIX, header, _b64e(nonce), _b64e(sealed)))

    @staticmethod
    def parse_ciphertext(ciphertext):
        try:
            prefix, header, nonce, sealed = ciphertext.split(".")
            meta = json.loads(_b64d(header))
            if prefix != CIPHERTEXT_PREFIX or not isinstance(meta.get("v"), int) or not isinstance(meta.get("k"), str):
                raise ValueError
            return meta["k"], meta["v"], _b64d(nonce), _b64d(sealed)
        except (ValueError, AttributeError, binascii.Error, TypeError):
            raise InputError("decrypt", "ciphertext", f"it is not a {CIPHERTEXT_PREFIX} ciphertext of this KMS") from None

    def decrypt(self, key_id, ciphertext, context, attestation=None):
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        owner, version, nonce, sealed = self.parse_ciphertext(ciphertext)
        obj = f"a ciphertext under version {version} of key '{key_id}'"
        if owner != key_id:
            raise AccessDeniedError("decrypt", obj, f"the ciphertext belongs to key '{owner}'")
        state = self._key(self.store.read(), key_id, "decrypt")
        # The evidence is remembered only once the decrypt succeeded: a refused call changes nothing.
        accepted = []
        rules.require_attestation(state.get("attestation_trust"), attestation, state["allowed_measurements"], obj, key_id,
                                  lambda *tokens_now_window: accepted.append(tokens_now_window))
        entry = rules.find_version(state, version, "decrypt")
        if entry["state"] != "enabled":
            raise AccessDeniedError("decrypt", obj, f"version {version} is {entry['state']}")
        try:
            plaintext = AESGCM(_b64d(entry["material"])).decrypt(nonce, sealed, self._aad(key_id, version, context))
        except InvalidTag:
            raise AccessDeniedError("decrypt", obj, "the ciphertext does not authenticate under this encryption context") from None
        self._remember(key_id, *accepted[0], obj)
        return plaintext

    def _remember(self, key_id, tokens, now, window, obj):
        """Record accepted evidence in the key's replay cache: ``<store>.replay`` beside the store,
        a store of its own (same locking, atomic writes and checks), so that decrypts leave the
        key store itself byte-for-byte unchanged."""
        def change(caches):
            caches[key_id] = rules.remember_evidence(caches.get(key_id), tokens, now, window, obj)

        LocalStore(self.store.path + REPLAY_SUFFIX).mutate("decrypt", change)

    # --- rotation coordination -------------------------------------------------------
    def get_snapshot(self, key_id):
        return self.describe_key(key_id).get("snapshot")

    def save_snapshot(self, key_id, snapshot):
        self._mutate("record a snapshot of", key_id, lambda state: state.__setitem__("snapshot", dict(snapshot) if snapshot else None))

    def get_lock(self, key_id):
        return self.describe_key(key_id).get("lock")

    def acquire_lock(self, key_id, owner, ttl_seconds, break_stale=False, takeover_from=None):
        rules.check_lock_request(owner, ttl_seconds, f"key '{key_id}'")

        def change(state):
            now = _now()
            lock = state.get("lock")
            if lock and takeover_from and lock["owner"] == takeover_from:
                lock = None  # the caller proved the holder is gone; compare-and-swap under the store lock
            error = rules.lock_conflict(key_id, lock, owner, break_stale, now)
            if error:
                raise error
            if lock and lock["owner"] != owner:
                lock = None
            acquired = lock["acquired_at"] if lock else _iso(now)
            state["lock"] = {"owner": owner, "acquired_at": acquired, "expires_at": _iso(now + datetime.timedelta(seconds=ttl_seconds))}
            return dict(state["lock"])

        return self._mutate("acquire the rotation lock on", key_id, change)

    def release_lock(self, key_id, owner):
        def change(state):
            lock = state.get("lock")
            if not lock:
                return False
            if lock["owner"] != owner:
                raise LockHeldError("release the rotation lock on", f"key '{key_id}'", f"it is held by another owner ('{lock['owner']}')")
            state["lock"] = None
            return True

        return self._mutate("release the rotation lock on", key_id, change)
