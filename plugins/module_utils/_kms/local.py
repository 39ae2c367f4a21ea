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

from ansible_collections.alfred.tee_kms.plugins.module_utils._common import deps
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import (
    AccessDeniedError,
    ConflictError,
    InputError,
    NotFoundError,
)
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms import rules
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.base import KmsProvider
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local_store import LocalStore, canonical

CIPHERTEXT_PREFIX = "tkms1"
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
        self.check_key_name(key_id, action)
        state = keys.get(key_id)
        if state is None:
            where = self.store.label if self.store.exists() else f"{self.store.label} (the file does not exist yet)"
            raise NotFoundError(action, f"key '{key_id}'", f"it does not exist in {where}")
        if state.get("pending_deletion_at") and not allow_pending:
            raise ConflictError(action, f"key '{key_id}'", f"it is scheduled for deletion on {state['pending_deletion_at']}")
        return state

    # --- hooks of KmsProvider: the store only (the rules are applied by base.py) -----------
    def _load_key(self, key_id, action):
        return self._key(self.store.read(), key_id, action), None

    def _transaction(self, key_id, action, change):
        # Under the store lock: the change is checked against the state it writes over.
        return self.store.mutate(action, lambda keys: change(self._key(keys, key_id, action), None))

    # --- reads -----------------------------------------------------------------------
    def describe_key(self, key_id):
        state = self._key(self.store.read(), key_id, "read", allow_pending=True)
        return {k: v for k, v in state.items() if k != "material"} | {
            "versions": [{k: v for k, v in entry.items() if k != "material"} for entry in state["versions"]]
        }

    # --- key lifecycle ---------------------------------------------------------------
    def _do_create_key(self, key_id, allowed_measurements, measurement_format, trust, description, env):
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

    def _do_record_env(self, state, backend, env):
        state["env"] = env

    def _do_set_attestation_trust(self, state, backend, trust):
        state["attestation_trust"] = trust

    def _do_schedule_key_deletion(self, state, backend, pending_days):
        when = _iso(_now() + datetime.timedelta(days=pending_days))
        for entry in state["versions"]:
            if entry["state"] != "destroy_scheduled":
                entry["state"] = "destroy_scheduled"
                entry["destroy_after"] = when
        state["pending_deletion_at"] = when

    # --- versions --------------------------------------------------------------------
    def _do_create_version(self, state, backend, version):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        state["versions"].append({"version": version, "state": "enabled", "created_at": _iso(_now()),
                                  "material": _b64e(AESGCM.generate_key(bit_length=256))})

    def _do_set_primary(self, state, backend, version):
        state["primary_version"] = version

    def _do_set_version_state(self, state, backend, version, target, pending_days):
        entry = next(entry for entry in state["versions"] if entry["version"] == version)
        entry["state"] = target
        if target == "destroy_scheduled":
            entry["destroy_after"] = _iso(_now() + datetime.timedelta(days=pending_days))
        else:
            entry.pop("destroy_after", None)

    # --- attestation policy ----------------------------------------------------------
    def _do_set_allowed_measurements(self, state, backend, measurements):
        state["allowed_measurements"] = list(measurements)

    def _do_restore(self, state, backend, primary_version, allowed_measurements):
        state["primary_version"] = primary_version
        state["allowed_measurements"] = list(allowed_measurements)

    # --- data path -------------------------------------------------------------------
    @staticmethod
    def _aad(key_id, version, context) -> bytes:
        return canonical({"key_id": key_id, "version": version, "context": context or {}})

    @staticmethod
    def _material(state, version) -> bytes:
        return _b64d(next(entry for entry in state["versions"] if entry["version"] == version)["material"])

    def _do_encrypt(self, state, backend, plaintext, context, version):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        key_id = state["key_id"]
        nonce = os.urandom(12)
        sealed = AESGCM(self._material(state, version)).encrypt(nonce, plaintext, self._aad(key_id, version, context))
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

    def _ciphertext_version(self, key_id, ciphertext):
        owner, version, dummy, dummy = self.parse_ciphertext(ciphertext)
        if owner != key_id:
            raise AccessDeniedError("decrypt", f"a ciphertext under version {version} of key '{key_id}'", f"the ciphertext belongs to key '{owner}'")
        return version

    def _do_decrypt(self, state, backend, version, ciphertext, context, evidence, obj, remember):
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        dummy, dummy, nonce, sealed = self.parse_ciphertext(ciphertext)
        try:
            return AESGCM(self._material(state, version)).decrypt(nonce, sealed, self._aad(state["key_id"], version, context))
        except InvalidTag:
            raise AccessDeniedError("decrypt", obj, "the ciphertext does not authenticate under this encryption context") from None

    def _remember_evidence(self, state, backend, tokens, now, window, obj):
        """Record accepted evidence in the key's replay cache: ``<store>.replay`` beside the store,
        a store of its own (same locking, atomic writes and checks), so that decrypts leave the
        key store itself byte-for-byte unchanged."""
        key_id = state["key_id"]

        def change(caches):
            caches[key_id] = rules.remember_evidence(caches.get(key_id), tokens, now, window, obj)

        LocalStore(self.store.path + REPLAY_SUFFIX).mutate("decrypt", change)

    # --- rotation coordination -------------------------------------------------------
    def _do_save_snapshot(self, state, backend, snapshot):
        state["snapshot"] = dict(snapshot) if snapshot else None

    def _do_write_lock(self, state, backend, record):
        state["lock"] = dict(record) if record else None
