# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``vault`` provider: HashiCorp Vault or OpenBao Transit (the same API).

Private module_utils: the API may change without notice between releases.

Mapping (see docs/providers/vault.md):

- ``key_id`` is the Transit key name; versions are Transit key versions. Transit keys are
  created ``derived`` so that the caller's encryption context is bound to every ciphertext.
- Transit encrypts with its latest version unless ``key_version`` is given, so the primary
  version is an explicit record, ``<kv_mount_point>/tee-kms/<key>/meta`` in KV v2, that
  encrypting clients read and pass as ``key_version``. A staged version exists in Transit
  but is never used by this collection until that record names it. Versions are never
  trimmed or archived: ``min_decryption_version`` and ``min_encryption_version`` are never
  written, so every version keeps decrypting across rotations and rollbacks.
- The allow-list is enforced by the server: a JWT auth role ``tee-kms-<key>`` (on
  ``jwt_mount_point``) whose ``bound_claims`` on the measurement claim are the allowed
  measurements and whose only policy, ``tee-kms-<key>-decrypt``, allows decrypt on this key.
  An enclave logs in with a login token it mints inside itself (audience ``login_audience``,
  which the attestation tokens its public endpoint hands to anyone never carry) and decrypts
  with the one-use token it gets; an enclave outside the allow-list is refused by the server
  at login. The provider never decrypts with the operator's token.
- The role and both policies are written once by a Vault administrator (``vault_access.py``,
  module ``vault_key_access``). The rotation identity changes only the role's bound claims,
  and this provider refuses to rotate a key whose role would accept a bearer token.
- Rotation lock and rollback snapshot are KV v2 records next to the primary record, written
  with check-and-set, so two runs can never both take the lock: the server refuses the
  second write.
"""

from __future__ import annotations

import base64
import datetime
import json
import re

from ansible.module_utils.basic import env_fallback

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.common import decode_document
from ansible_collections.alfred.tee_kms.plugins.module_utils._common import deps
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import (
    AccessDeniedError,
    ConflictError,
    InputError,
    LockHeldError,
    NotFoundError,
    ProviderError,
    TeeKmsError,
)
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms import rules
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.base import KmsProvider, normalize_endpoint
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.vault_access import NOBODY, bound_claim, names, role_problem_error, role_problems
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.vault_client import AUTH_METHODS, VaultSession, check_options

RECORDS = "tee-kms"
# Transit key names are one path segment of word characters, dots and dashes.
_NAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,126}[A-Za-z0-9_])?$")
_CIPHERTEXT = re.compile(r"^vault:v([1-9][0-9]{0,8}):[A-Za-z0-9+/=]+$")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso(value) -> str | None:
    """Transit's version times (Unix seconds, or RFC 3339 for asymmetric keys) as the contract's UTC seconds."""
    if not value:
        return None
    if isinstance(value, int):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = re.sub(r"\.[0-9]+", "", str(value)).replace("Z", "+00:00")
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        return str(value)
    return parsed.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _check_transit_name(key_id, action: str) -> None:
    if not _NAME.match(key_id):
        raise InputError(action, f"key '{key_id}'", "with provider vault, key_id is a Transit key name: 1-128 letters, digits, "
                         "_, . and -, starting and ending with a letter, digit or _")


def check_name(key_id, action: str) -> str:
    """A key id vault_key_access may set up: what KmsProvider.check_key_name checks, without a provider."""
    rules.check_key_id(key_id, action)
    _check_transit_name(key_id, action)
    return key_id


class VaultKmsProvider(KmsProvider):
    name = "vault"
    label = "the vault KMS provider"
    # Connection options are named as community.hashi_vault names them, so that existing
    # module_defaults and credentials carry over; validate_certs is taken by the aws provider
    # (the registry gives every option one owner), hence vault_validate_certs.
    argument_spec = dict(
        url=dict(type="str", fallback=(env_fallback, ["VAULT_ADDR", "BAO_ADDR"])),
        token=dict(type="str", no_log=True, fallback=(env_fallback, ["VAULT_TOKEN", "BAO_TOKEN"])),
        namespace=dict(type="str", fallback=(env_fallback, ["VAULT_NAMESPACE", "BAO_NAMESPACE"])),
        auth_method=dict(type="str", default="token", choices=list(AUTH_METHODS),
                         fallback=(env_fallback, ["ANSIBLE_HASHI_VAULT_AUTH_METHOD"])),
        role_id=dict(type="str", no_log=False, fallback=(env_fallback, ["VAULT_ROLE_ID", "BAO_ROLE_ID"])),
        secret_id=dict(type="str", no_log=True, fallback=(env_fallback, ["VAULT_SECRET_ID", "BAO_SECRET_ID"])),
        approle_mount_point=dict(type="str", default="approle"),
        ca_cert=dict(type="path", aliases=["cacert"], fallback=(env_fallback, ["VAULT_CACERT", "BAO_CACERT"])),
        vault_validate_certs=dict(type="bool", default=True),
        mount_point=dict(type="str", default="transit"),
        kv_mount_point=dict(type="str", default="secret"),
        jwt_mount_point=dict(type="str", default="jwt"),
    )
    requirements = (deps.HVAC,)
    #: Only an enclave can decrypt, with a login token it mints inside itself: the probes ask the
    #: enclave to decrypt the canary (its canary endpoint) instead of logging in for it.
    enclave_login = True

    @classmethod
    def validate_options(cls, options):
        check_options(options)

    @classmethod
    def from_options(cls, options):
        return cls(VaultSession(options))

    @classmethod
    def identity(cls, options, key_id):
        namespace = (options.get("namespace") or "").strip("/")
        mount = (options.get("mount_point") or "transit").strip("/")
        return f"{cls.name}|{normalize_endpoint(options.get('url'))}|{namespace}|{mount}|{key_id}"

    def __init__(self, session: VaultSession):
        self.vault = session
        self.transit = (session.options.get("mount_point") or "transit").strip("/")
        self.kv = (session.options.get("kv_mount_point") or "secret").strip("/")
        self.jwt = (session.options.get("jwt_mount_point") or "jwt").strip("/")

    # --- low level -------------------------------------------------------------------
    def _request(self, method, path, action, obj, payload=None, client=None, retry=True):
        client = client or self.vault.client()
        call = getattr(client.adapter, method)
        answer = self.vault.call(lambda: call(f"/v1/{path}", json=payload) if payload is not None else call(f"/v1/{path}"),
                                 action, obj, retry=retry)
        return answer if isinstance(answer, dict) else {}

    def _read(self, path, action, obj):
        """The ``data`` of a read, or None when the server has nothing there."""
        try:
            return self._request("get", path, action, obj).get("data")
        except NotFoundError:
            return None

    def _record_path(self, key_id, name) -> str:
        return f"{self.kv}/data/{RECORDS}/{key_id}/{name}"

    def _kv_get(self, key_id, name, action, obj):
        """(version, data) of a KV v2 record; (0, None) when it was never written.

        A record whose latest version was deleted (soft delete) reads as 404 but still has
        versions: its data is gone, and the next check-and-set write must name its current
        version, else every later write (a lock, a snapshot) would be refused for good."""
        found = self._read(self._record_path(key_id, name), action, obj)
        if found and found.get("data") is not None:
            return int(found["metadata"]["version"]), found.get("data") or {}
        metadata = self._read(f"{self.kv}/metadata/{RECORDS}/{key_id}/{name}", action, obj)
        return int((metadata or {}).get("current_version") or 0), None

    def _kv_put(self, key_id, name, data, cas, action, obj):
        """Write a record only if it is still at version ``cas`` (0: only if it does not exist)."""
        self._request("post", self._record_path(key_id, name), action, obj, {"options": {"cas": cas}, "data": data}, retry=False)

    def _transit_key(self, key_id, action, obj):
        return self._read(f"{self.transit}/keys/{key_id}", action, obj)

    # --- hooks of KmsProvider: Vault calls only (the rules are applied by base.py) --------
    def _check_key_name(self, key_id, action):
        _check_transit_name(key_id, action)

    def _check_trust(self, trust, action, obj):
        self._check_login_audience(trust, action, obj)

    def _load_key(self, key_id, action):
        return self._load(key_id, action)

    # --- reads -----------------------------------------------------------------------
    def _load(self, key_id, action):
        self.check_key_name(key_id, action)
        obj = f"key '{key_id}'"
        transit = self._transit_key(key_id, action, obj)
        if transit is None:
            raise NotFoundError(action, obj, f"no Transit key of that name exists on mount {self.transit} of {self.vault.where()}")
        meta_version, meta = self._kv_get(key_id, "meta", action, obj)
        if not meta or not meta.get("primary_version"):
            raise ProviderError(action, obj, f"it has no primary-version record at {self.kv}/{RECORDS}/{key_id}/meta; Transit keys not "
                                "created by alfred.tee_kms cannot be managed (their primary would be whatever Transit encrypts with)")
        floor = int(transit.get("min_decryption_version") or 1)
        versions = [{"version": int(n), "state": "enabled" if int(n) >= floor else "disabled", "created_at": _iso(created)}
                    for n, created in (transit.get("keys") or {}).items()]
        versions.sort(key=lambda v: v["version"])
        role = self._read(f"auth/{self.jwt}/role/{names(key_id)['role']}", action, obj)
        claim = bound_claim(meta.get("attestation_trust"))
        allowed = [m for m in ((role or {}).get("bound_claims") or {}).get(claim) or [] if m != NOBODY]
        lock_version, lock = self._kv_get(key_id, "lock", action, obj)
        snapshot_version, snapshot = self._kv_get(key_id, "snapshot", action, obj)
        state = {
            "key_id": key_id,
            "description": meta.get("description") or "",
            "env": meta.get("env"),
            "created_at": versions[0]["created_at"] if versions else None,
            "measurement_format": meta.get("measurement_format") or "sha384",
            "primary_version": int(meta["primary_version"]),
            "versions": versions,
            "allowed_measurements": sorted(allowed) if isinstance(allowed, list) else [allowed],
            "attestation_trust": meta.get("attestation_trust") or {},
            "lock": lock if lock and lock.get("owner") else None,
            "snapshot": snapshot or None,
            "pending_deletion_at": None,
        }
        internal = {"meta_version": meta_version, "meta": meta, "lock_version": lock_version,
                    "snapshot_version": snapshot_version, "transit": transit, "role": role or {},
                    "role_problems": role_problems(role, meta.get("attestation_trust"), key_id)}
        return state, internal

    def describe_key(self, key_id):
        return self._load(key_id, "read")[0]

    # --- key lifecycle ---------------------------------------------------------------
    @staticmethod
    def _check_login_audience(trust, action, obj) -> None:
        if not (trust or {}).get("login_audience"):
            raise InputError(action, obj, "with provider vault, attestation_trust.login_audience is required: the audience of the tokens "
                             "enclaves present to Vault's JWT login, which the attestation tokens their public endpoint hands to anyone "
                             "never carry (docs/providers/vault.md)")

    def _write_allowlist(self, key_id, measurements, trust, action, obj):
        """The only write of the role a rotation makes (and the rotation identity may make): its bound claims."""
        self._request("post", f"auth/{self.jwt}/role/{names(key_id)['role']}", action, obj,
                      {"role_type": "jwt", "bound_claims": {bound_claim(trust): sorted(measurements)}})

    def _check_access(self, key_id, role, trust, action) -> None:
        problems = role_problems(role, trust, key_id)
        if problems:
            raise role_problem_error(action, key_id, problems)

    def _do_create_key(self, key_id, allowed_measurements, measurement_format, trust, description, env):
        action = "create"
        obj = f"key '{key_id}'"
        if self._transit_key(key_id, action, obj) is not None:
            raise ConflictError(action, obj, f"a Transit key of that name already exists on mount {self.transit}")
        # The role and the decrypt policy are the administrator's (vault_key_access): a key is
        # only created where they already admit login tokens of this trust alone.
        self._check_access(key_id, self._read(f"auth/{self.jwt}/role/{names(key_id)['role']}", action, obj), trust, action)
        meta = {"primary_version": 1, "measurement_format": measurement_format, "attestation_trust": trust,
                "description": description or "", "created_at": _now(), "env": env}
        version, dummy = self._kv_get(key_id, "meta", action, obj)
        # A create that died before making the Transit key left its record: finish that one.
        self._kv_put(key_id, "meta", meta, version, action, obj)
        self._write_allowlist(key_id, allowed_measurements, trust, action, obj)
        # The Transit key last: until it exists the key reads as absent and a re-run repeats all.
        self._request("post", f"{self.transit}/keys/{key_id}", action, obj, {"type": "aes256-gcm96", "derived": True})
        return self.describe_key(key_id)

    def _do_record_env(self, state, backend, env):
        key_id = state["key_id"]
        self._kv_put(key_id, "meta", dict(backend["meta"], env=env), backend["meta_version"], "record the environment of", f"key '{key_id}'")

    def _do_set_attestation_trust(self, state, backend, trust):
        action = "update attestation trust of"
        key_id = state["key_id"]
        obj = f"key '{key_id}'"
        # The role's audience and claim are the administrator's: a trust they do not match is
        # refused here rather than silently disagreeing with what the server enforces.
        self._check_access(key_id, backend["role"], trust, action)
        self._kv_put(key_id, "meta", dict(backend["meta"], attestation_trust=trust), backend["meta_version"], action, obj)

    def schedule_key_deletion(self, key_id, pending_days):
        # Not an operation Transit has: refused before any rule or read, whatever the arguments.
        raise InputError("schedule deletion of", f"key '{key_id}'", "provider vault cannot schedule a deletion: Transit deletes a key "
                         "at once and for good; re-encrypt the data, then delete the key in Vault with deletion_allowed")

    def _do_schedule_key_deletion(self, state, backend, pending_days):
        self.schedule_key_deletion(state["key_id"], pending_days)

    # --- versions --------------------------------------------------------------------
    def _do_create_version(self, state, backend, version):
        action = "create a version of"
        key_id = state["key_id"]
        obj = f"key '{key_id}'"
        self._check_access(key_id, backend["role"], state["attestation_trust"], action)
        # Not retried: a rotate that reached the server before a 503 would make two versions.
        self._request("post", f"{self.transit}/keys/{key_id}/rotate", action, obj, {}, retry=False)
        latest = int((self._transit_key(key_id, action, obj) or {}).get("latest_version") or 0)
        if latest != version:
            raise ConflictError(action, f"version {version} of key '{key_id}'",
                                f"Transit now has {latest} versions: another writer rotated the key at the same time")

    def _do_set_primary(self, state, backend, version):
        key_id = state["key_id"]
        self._kv_put(key_id, "meta", dict(backend["meta"], primary_version=version), backend["meta_version"], "promote a version of",
                     f"key '{key_id}'")

    changes_version_states = False

    def _do_set_version_state(self, state, backend, version, target, pending_days):
        obj = f"version {version} of key '{state['key_id']}'"
        raise InputError("change the state of", obj, f"provider vault cannot make a version {target}: Transit can only trim versions "
                         "below min_decryption_version, which would leave every ciphertext under them undecryptable")

    # --- attestation policy ----------------------------------------------------------
    def _do_set_allowed_measurements(self, state, backend, measurements):
        action = "update the allow-list of"
        key_id = state["key_id"]
        obj = f"key '{key_id}'"
        self._check_access(key_id, backend["role"], state["attestation_trust"], action)
        self._write_allowlist(key_id, measurements, state["attestation_trust"], action, obj)

    def _do_restore(self, state, backend, primary_version, allowed_measurements):
        action = "restore"
        key_id = state["key_id"]
        obj = f"key '{key_id}'"
        # The allow-list first (revokes a rejected image before traffic moves back), the primary
        # record last: an interrupted restore reads as "not restored" and a re-run repeats it.
        # Not refused on a role that needs its administrator: a rollback must still work in an emergency.
        if sorted(allowed_measurements) != state["allowed_measurements"]:
            self._write_allowlist(key_id, allowed_measurements, state["attestation_trust"], action, obj)
        if state["primary_version"] != primary_version:
            self._kv_put(key_id, "meta", dict(backend["meta"], primary_version=primary_version), backend["meta_version"], action, obj)

    def evaluate_policy(self, key_id, measurement) -> bool:
        """Would the server's JWT role admit a token with this measurement claim?"""
        state, internal = self._load(key_id, "evaluate the policy of")
        return measurement in state["allowed_measurements"] and not internal["role_problems"]

    # --- data path -------------------------------------------------------------------
    @staticmethod
    def _context(context) -> str:
        """Transit derives a per-context key: the context is bound to the ciphertext."""
        return _b64(json.dumps({str(k): str(v) for k, v in (context or {}).items()}, sort_keys=True, separators=(",", ":")).encode("utf-8"))

    def _do_encrypt(self, state, backend, plaintext, context, version):
        key_id = state["key_id"]
        obj = f"data under version {version} of key '{key_id}'"
        answer = self._request("post", f"{self.transit}/encrypt/{key_id}", "encrypt", obj,
                               {"plaintext": _b64(plaintext), "context": self._context(context), "key_version": version})
        return answer["data"]["ciphertext"]

    @staticmethod
    def parse_ciphertext(ciphertext) -> int:
        match = _CIPHERTEXT.match(ciphertext) if isinstance(ciphertext, str) else None
        if not match:
            raise InputError("decrypt", "ciphertext", "it is not a Transit ciphertext (vault:v<n>:...)")
        return int(match.group(1))

    def _login(self, key_id, attestation, obj) -> str:
        """Log in with an enclave's login token (``attestation["document"]``, minted inside the
        enclave); the server checks signature, audience, expiry and the measurement against the
        allow-list. Returns the one-use token. Only the enclave holds such a token: the
        controller's probes ask the enclave to decrypt (its canary endpoint) instead."""
        fmt = attestation.get("format") or "jwt"
        if fmt != "jwt":
            raise AccessDeniedError("decrypt", obj, f"provider vault accepts jwt attestation tokens only (got {fmt} evidence): the "
                                    "server's JWT auth method is what checks them")
        token = decode_document(attestation["document"]).decode("ascii", "replace").strip()
        anonymous = self.vault.new_client(token="")
        try:
            answer = self._request("post", f"auth/{self.jwt}/login", "decrypt", obj,
                                   {"role": names(key_id)["role"], "jwt": token}, client=anonymous)
        except TeeKmsError as exc:
            if isinstance(exc, ProviderError) and ("could not be reached" in exc.cause or "sealed" in exc.cause):
                raise
            raise AccessDeniedError("decrypt", obj, f"the server refused the attestation login ({exc.cause})") from None
        return answer["auth"]["client_token"]

    def login_refused(self, key_id, attestation) -> tuple:
        """(True, the server's reason) when a login with this token is refused, else (False, ...).
        The enforcement probes check that a token from an enclave's public endpoint is refused."""
        try:
            self._login(key_id, attestation, f"key '{key_id}'")
        except AccessDeniedError as exc:
            return True, exc.cause
        return False, "the server gave a Vault token for it"

    #: The server is the decrypt gate (its JWT login checks the enclave's token): no evidence is verified here.
    gates_decrypt = False

    def _ciphertext_version(self, key_id, ciphertext):
        return self.parse_ciphertext(ciphertext)

    def _do_decrypt(self, state, backend, version, ciphertext, context, evidence, obj, remember):
        key_id, attestation = state["key_id"], evidence  # the caller's attestation: the server is the gate
        # Never the operator's token: an unattested caller asks with no token at all and the
        # server refuses it; an attested one with the token its evidence earned.
        token = self._login(key_id, attestation, obj) if attestation and attestation.get("document") else ""
        caller = self.vault.new_client(token=token)
        try:
            answer = self._request("post", f"{self.transit}/decrypt/{key_id}", "decrypt", obj,
                                   {"ciphertext": ciphertext, "context": self._context(context)}, client=caller, retry=False)
        except NotFoundError as exc:
            raise AccessDeniedError("decrypt", obj, exc.cause) from None
        except ProviderError as exc:
            if "authentication failed" in exc.cause or "invalid ciphertext" in exc.cause:
                raise AccessDeniedError("decrypt", obj, "the ciphertext does not authenticate under this encryption context") from None
            raise
        return base64.b64decode(answer["data"]["plaintext"])

    # --- rotation coordination -------------------------------------------------------
    def _do_save_snapshot(self, state, backend, snapshot):
        key_id = state["key_id"]
        self._kv_put(key_id, "snapshot", dict(snapshot) if snapshot else {}, backend["snapshot_version"], "record a snapshot of", f"key '{key_id}'")

    def _create_lock_record(self, key_id, action, obj) -> int:
        """Create the key's lock record, free, and return its version. OpenBao lets two concurrent first writes of a
        record (cas=0) both succeed: two runs took a never-taken lock at once (tests/vault, 2 runs in 12), while a
        check-and-set on an existing version lets one through. So the lock is only ever taken on a version."""
        try:
            self._kv_put(key_id, "lock", {"owner": ""}, 0, action, obj)
        except ConflictError:  # another run created it first: as good
            pass
        version, lock = self._kv_get(key_id, "lock", action, obj)
        if lock and lock.get("owner"):
            raise LockHeldError(action, obj, "another run acquired it at the same moment; if no other rotation is running, "
                                "retry with break_stale_lock=true")
        return version

    def _do_write_lock(self, state, backend, record):
        key_id = state["key_id"]
        obj = f"key '{key_id}'"
        if record is None:  # released: the record stays, without an owner
            action = "release the rotation lock on"
            try:
                self._kv_put(key_id, "lock", {"owner": ""}, backend["lock_version"], action, obj)
            except ConflictError:
                raise LockHeldError(action, obj, "it changed while it was being released; read it again") from None
            return
        action = "acquire the rotation lock on"
        version = backend["lock_version"] or self._create_lock_record(key_id, action, obj)
        try:
            # Check-and-set on the version read: the server refuses this write if any other run
            # wrote the lock since, so at most one run gets it.
            self._kv_put(key_id, "lock", record, version, action, obj)
        except ConflictError:
            raise LockHeldError(action, obj, "another run acquired it at the same moment; if no other rotation is running, "
                                "retry with break_stale_lock=true") from None
