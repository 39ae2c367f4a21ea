# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``aws`` provider: AWS KMS, one KMS key per version behind a stable alias.

Private module_utils: the API may change without notice between releases.

Mapping (see docs/providers/aws.md):

- ``key_id`` is an alias, ``alias/<name>``: the name applications use. It targets the
  primary version's KMS key; promote is ``UpdateAlias``.
- Version ``n`` is its own symmetric KMS key, tagged ``alfred:tee_kms:key_id=<alias>`` and
  ``alfred:tee_kms:version=<n>``, and found through the alias ``<alias>/v<n>`` (ListAliases is
  one paginated call; KMS cannot search keys by tag). Creating that alias is the atomic
  step that makes a version exist: two runs can never both create version n.
- Version states: Enabled -> enabled, Disabled -> disabled, PendingDeletion ->
  destroy_scheduled (``ScheduleKeyDeletion``, 7-30 days).
- The allow-list is the collection's statements in each enabled version's key policy
  (see _aws_policy). Reads take it from the primary version; writes go to every enabled
  version, the primary last, so that an interrupted write shows as "not yet changed" and a
  re-run converges.
- Rollback snapshot, rotation lock and attestation trust anchors live with the keys, as
  tags (JSON, zlib, base64, split into 256-character values; policy-neutral) on a version
  key. The lock is a numbered alias ``<alias>/tee-kms-lock/<n>`` plus a record (owner, expiry,
  token) on the key it targets, see _aws_lock; the snapshot is found through
  ``<alias>/tee-kms-snapshot``. A fresh controller (AWX container) finds both.
- Namespace: ``<alias>/v<n>``, ``<alias>/tee-kms-lock/<n>``, ``<alias>/tee-kms-snapshot`` and
  ``<alias>/tee-kms-seen/<token>`` are the key's own aliases; every one of them must target one
  of its version keys, else every action on the key stops (see ``own_aliases``). A key_id that
  would land in another key's namespace is refused (``check_alias``), and the aliases of other
  keys nested under ``<alias>/`` are never read, counted or deleted.

Enforcement: AWS KMS verifies a Nitro attestation document passed as ``Recipient`` and
evaluates ``kms:RecipientAttestation:*`` conditions itself. Test servers (moto) do neither,
so ``decrypt`` first verifies the evidence locally against the trust anchors kept with the
key and the measurements in the version's policy, and refuses unattested or disallowed
callers before calling KMS; ``evaluate_policy`` and ``policy_findings`` check the policy
text. Neither replaces a test against real AWS KMS with a real enclave.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import re
import zlib

from ansible.module_utils.basic import env_fallback

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.common import AttestationError, decode_document
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.trust import DEFAULTS as trust_defaults
from ansible_collections.alfred.tee_kms.plugins.module_utils._common import deps
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import (
    AccessDeniedError,
    ConflictError,
    InputError,
    NotFoundError,
    ProviderError,
    TeeKmsError,
)
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms import aws_policy as policy
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.aws_lock import GENERATION, LOCK_PREFIX, AliasLock
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.aws_recipient import EnvelopeError, parse as parse_envelope
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms import rules
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.aws_client import AwsSession, check_params, error_code, wait_for
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.base import KmsProvider, normalize_endpoint

TAG = "alfred:tee_kms:"
TAG_KEY_ID = TAG + "key_id"
TAG_VERSION = TAG + "version"
TAG_FORMAT = TAG + "measurement_format"
TAG_ENV = TAG + "env"
SNAPSHOT_SUFFIX = "/tee-kms-snapshot"
# <key>/tee-kms-seen/<token>: the decrypt gate's replay cache, one alias per accepted token
# (CreateAlias is atomic, so two callers presenting the same evidence cannot both succeed).
SEEN_INFIX = "/tee-kms-seen/"
SEEN_TOKEN = r"[nd][0-9a-f]{31}"  # what rules.replay_tokens makes; _remember refuses anything else
# KMS allows 50 aliases per KMS key (the key's own alias, its version alias, lock and snapshot
# take up to 4 of the primary's): at most this many fresh decrypts at a time.
SEEN_CAPACITY = 40
CHUNK = 256          # KMS tag value limit
MAX_CHUNKS = 12      # per record; a key holds at most 50 tags
CIPHERTEXT_PREFIX = "tkmsaws1"
STATE_MAP = {"Enabled": "enabled", "Disabled": "disabled", "PendingDeletion": "destroy_scheduled",
             "PendingReplicaDeletion": "destroy_scheduled"}
_ALIAS = re.compile(r"^alias/[A-Za-z0-9/_-]{1,200}$")
# A key's own aliases, relative to ``<alias>/`` (see own_aliases). A key_id segment after the
# first that looks like one of them, in any case, is refused: ``alias/pay/v2`` as a key would
# be read as version 2 of ``alias/pay``, ``alias/pay/tee-kms-seen/x`` as its replay cache.
_OWN = "|".join(("v" + GENERATION, re.escape(LOCK_PREFIX[1:]) + GENERATION, re.escape(SNAPSHOT_SUFFIX[1:]),
                 re.escape(SEEN_INFIX[1:]) + SEEN_TOKEN))
_RESERVED_SEGMENT = re.compile(r"^(v[0-9]+|tee-kms-.*)$", re.IGNORECASE)


def _iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def check_alias(key_id, action: str) -> str:
    """The aws naming rule, after the shared one (KmsProvider.check_key_name): an alias outside another key's namespace."""
    if not _ALIAS.match(key_id) or key_id.startswith("alias/aws/"):
        raise InputError(action, f"key '{key_id}'", "with provider aws, key_id must be a KMS alias: alias/ followed by up to 200 "
                         "letters, digits, /, _ and - (not alias/aws/..., which AWS reserves)")
    segments = key_id.split("/")
    for index in range(2, len(segments)):
        if _RESERVED_SEGMENT.match(segments[index]):
            owner = "/".join(segments[:index])
            raise InputError(action, f"key '{key_id}'", f"with provider aws, its segment '{segments[index]}' is reserved: key "
                             f"'{owner}' owns the aliases {owner}/v<n>, {owner}/tee-kms-lock/<n>, {owner}/tee-kms-snapshot and "
                             f"{owner}/tee-kms-seen/<token>, so after its first segment a key_id may have no segment v<digits> "
                             "or tee-kms-... (in any case)")
    return key_id


def own_aliases(key_id: str, aliases: dict) -> dict:
    """The aliases among ``aliases`` (name -> target) that are ``key_id``'s own: exactly
    ``<key_id>/v<n>``, ``/tee-kms-lock/<n>``, ``/tee-kms-snapshot`` and ``/tee-kms-seen/<token>``.
    Anything else under ``<key_id>/`` is another key's (``alias/pay/team/v1`` is version 1 of
    ``alias/pay/team``) or none of the collection's, and is left alone."""
    pattern = re.compile("^" + re.escape(key_id + "/") + "(?:" + _OWN + ")$")
    return {name: kid for name, kid in aliases.items() if pattern.match(name)}


# --------------------------------------------------------------------------- tag records

def record_tags(name: str, obj) -> dict:
    """Encode a JSON record as tags: ``<TAG><name>=<count>:<digest>`` and chunk tags."""
    data = base64.b64encode(zlib.compress(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("utf-8"), 9)).decode("ascii")
    chunks = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)]
    if len(chunks) > MAX_CHUNKS:
        raise InputError("record", f"the {name} record", f"it is too large to keep in KMS tags ({len(data)} encoded characters, "
                         f"at most {CHUNK * MAX_CHUNKS})")
    tags = {f"{TAG}{name}": f"{len(chunks)}:{hashlib.sha256(data.encode('ascii')).hexdigest()[:16]}"}
    tags.update({f"{TAG}{name}:{i}": chunk for i, chunk in enumerate(chunks)})
    return tags


def read_record(tags: dict, name: str):
    head = tags.get(f"{TAG}{name}")
    if not head:
        return None
    try:
        count, digest = head.split(":", 1)
        data = "".join(tags[f"{TAG}{name}:{i}"] for i in range(int(count)))
        if hashlib.sha256(data.encode("ascii")).hexdigest()[:16] != digest:
            raise ValueError("digest mismatch")
        return json.loads(zlib.decompress(base64.b64decode(data)))
    except RecursionError:
        raise ProviderError("read", f"the {name} record kept in KMS tags", "it is damaged (it nests too deep)") from None
    except (KeyError, ValueError, zlib.error, binascii.Error) as exc:
        raise ProviderError("read", f"the {name} record kept in KMS tags", f"it is damaged ({exc})") from None


def record_tag_keys(tags: dict, name: str) -> list:
    return [k for k in tags if k == f"{TAG}{name}" or k.startswith(f"{TAG}{name}:")]


def nitro_pcr(trust: dict) -> int:
    pcrs = (trust or {}).get("nitro_pcrs") or trust_defaults["nitro_pcrs"]
    if len(pcrs) != 1:
        raise InputError("configure attestation trust for", "key", "with provider aws, nitro_pcrs must name exactly one PCR: "
                         "a KMS condition compares one kms:RecipientAttestation:PCR<n> value")
    return pcrs[0]


class RecipientCiphertext:
    """What AWS KMS answers a Recipient request: the plaintext enveloped to the enclave's key.

    Deliberately not bytes: it never compares equal to a plaintext, so no caller can mistake
    "KMS accepted the document" for "the plaintext was recovered"."""

    def __init__(self, envelope: bytes, key_arn):
        self.envelope = envelope
        self.key_arn = key_arn

    def __repr__(self):
        return f"RecipientCiphertext({len(self.envelope)} bytes for {self.key_arn})"


def recipient_answer(answer: dict, obj: str, where: str) -> RecipientCiphertext:
    """Check a Decrypt answer to a Recipient request the way an enclave will read it."""
    if answer.get("Plaintext") is not None:
        raise ProviderError("decrypt", obj, f"{where} answered a Recipient request with Plaintext; AWS KMS never does (it "
                            "answers CiphertextForRecipient), so this endpoint does not enforce attestation")
    envelope = answer.get("CiphertextForRecipient")
    if not envelope:
        raise ProviderError("decrypt", obj, f"{where} answered a Recipient request without CiphertextForRecipient")
    try:
        parse_envelope(envelope)
    except EnvelopeError as exc:
        raise ProviderError("decrypt", obj, f"{where} answered a CiphertextForRecipient that is not the CMS envelope "
                            f"KMS sends ({exc})") from None
    return RecipientCiphertext(envelope, answer.get("KeyId"))


class AwsKmsProvider(KmsProvider):
    name = "aws"
    label = "the AWS KMS provider"
    # Option names and aliases follow amazon.aws so that existing module_defaults and
    # credentials carry over (the aws section of plugins/doc_fragments/provider.py documents them).
    argument_spec = dict(
        region=dict(type="str", aliases=["aws_region", "ec2_region"], fallback=(env_fallback, ["AWS_REGION", "AWS_DEFAULT_REGION"])),
        endpoint_url=dict(type="str", aliases=["aws_endpoint_url", "ec2_url"], fallback=(env_fallback, ["AWS_URL", "AWS_ENDPOINT_URL"])),
        # An access key id names a credential; it is not the secret part (amazon.aws does the same).
        access_key=dict(type="str", aliases=["aws_access_key_id", "aws_access_key", "ec2_access_key"], no_log=False,
                        fallback=(env_fallback, ["AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "EC2_ACCESS_KEY"])),
        secret_key=dict(type="str", aliases=["aws_secret_access_key", "aws_secret_key", "ec2_secret_key"], no_log=True,
                        fallback=(env_fallback, ["AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY", "EC2_SECRET_KEY"])),
        session_token=dict(type="str", aliases=["aws_session_token", "security_token", "aws_security_token", "access_token"], no_log=True,
                           fallback=(env_fallback, ["AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "EC2_SECURITY_TOKEN"])),
        profile=dict(type="str", aliases=["aws_profile"], fallback=(env_fallback, ["AWS_PROFILE", "AWS_DEFAULT_PROFILE"])),
        validate_certs=dict(type="bool", default=True, aliases=["aws_validate_certs"]),
        aws_ca_bundle=dict(type="path", fallback=(env_fallback, ["AWS_CA_BUNDLE"])),
    )
    # boto3 talks to AWS KMS; cryptography verifies the evidence presented with a decrypt.
    requirements = (deps.BOTO3, deps.CRYPTOGRAPHY)

    @classmethod
    def validate_options(cls, options):
        check_params(options)

    @classmethod
    def from_options(cls, options):
        return cls(AwsSession(options))

    @classmethod
    def identity(cls, options, key_id):
        return f"{cls.name}|{(options.get('region') or '').strip().lower()}|{normalize_endpoint(options.get('endpoint_url'))}|{key_id}"

    def resolve_key(self, key_id):
        """The ARN of the KMS key the alias targets: one key whatever endpoint spelling or default region reached it."""
        self.check_key_name(key_id, "read")
        try:
            return self._kms("describe_key", "read", f"key '{key_id}'", KeyId=key_id)["KeyMetadata"]["Arn"]
        except NotFoundError:
            return None

    def __init__(self, session: AwsSession):
        self.aws = session
        self.lock = AliasLock(self, read_record, record_tag_keys)

    # --- low level -------------------------------------------------------------------
    def _kms(self, operation, action, obj, **kwargs):
        return self.aws.call("kms", operation, action, obj, **kwargs)

    def _alias_target(self, alias, action, obj):
        """Key id the alias targets, or None."""
        try:
            return self._kms("describe_key", action, obj, KeyId=alias)["KeyMetadata"]["KeyId"]
        except NotFoundError:
            return None

    def _alias_entries(self, prefix, action, obj) -> dict:
        """{name: ListAliases entry} of the aliases whose name starts with ``prefix``."""
        found = {}
        kwargs = {}
        while True:
            page = self._kms("list_aliases", action, obj, **kwargs)
            for entry in page.get("Aliases", []):
                if entry.get("AliasName", "").startswith(prefix) and entry.get("TargetKeyId"):
                    found[entry["AliasName"]] = entry
            if not page.get("Truncated") or not page.get("NextMarker"):
                return found
            kwargs = {"Marker": page["NextMarker"]}

    def _aliases(self, prefix, action, obj) -> dict:
        return {name: entry["TargetKeyId"] for name, entry in self._alias_entries(prefix, action, obj).items()}

    def _tags(self, kid, action, obj) -> dict:
        tags, kwargs = {}, {}
        while True:
            page = self._kms("list_resource_tags", action, obj, KeyId=kid, **kwargs)
            tags.update({t["TagKey"]: t["TagValue"] for t in page.get("Tags", [])})
            if not page.get("Truncated") or not page.get("NextMarker"):
                return tags
            kwargs = {"Marker": page["NextMarker"]}

    def _tag(self, kid, tags: dict, action, obj):
        if tags:
            self._kms("tag_resource", action, obj, KeyId=kid, Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()])

    def _untag(self, kid, keys, action, obj):
        keys = list(keys)
        for i in range(0, len(keys), 50):
            self._kms("untag_resource", action, obj, KeyId=kid, TagKeys=keys[i:i + 50])

    def _put_record(self, kid, old_tags: dict, name, obj, action, label):
        """Write a record in one TagResource call (atomic for readers), then drop stale chunks."""
        new = record_tags(name, obj)
        self._tag(kid, new, action, label)
        stale = [k for k in record_tag_keys(old_tags, name) if k not in new]
        if stale:
            self._untag(kid, stale, action, label)

    def _policy_text(self, kid, action, obj) -> str:
        return self._kms("get_key_policy", action, obj, KeyId=kid, PolicyName="default")["Policy"]

    def _wait_state(self, kid, wanted: str, action, obj):
        wait_for(lambda: self._kms("describe_key", action, obj, KeyId=kid)["KeyMetadata"]["KeyState"] == wanted,
                 action, obj, f"the KMS key to become {wanted}")

    def _put_policy(self, kid, text, action, obj):
        # BypassPolicyLockoutSafetyCheck is never set: AWS must confirm the caller can still
        # manage the key under the new policy.
        self._kms("put_key_policy", action, obj, KeyId=kid, PolicyName="default", Policy=text)
        wait_for(lambda: policy.equivalent(self._policy_text(kid, action, obj), text), action, obj,
                 "the new key policy to be visible")

    def _create_alias(self, alias, kid, action, obj) -> bool:
        """CreateAlias; True if created (or already ours after a retried call), False if taken."""
        try:
            self._kms("create_alias", action, obj, AliasName=alias, TargetKeyId=kid)
        except ProviderError as exc:
            if "AlreadyExists" not in exc.cause:
                raise
            return self._alias_target(alias, action, obj) == kid
        wait_for(lambda: self._alias_target(alias, action, obj) == kid, action, obj, f"the alias {alias} to be visible")
        return True

    def _delete_alias(self, alias, action, obj):
        try:
            self._kms("delete_alias", action, obj, AliasName=alias)
        except NotFoundError:
            pass

    @staticmethod
    def _account(arn: str):
        parts = arn.split(":")
        return parts[4], parts[1]

    # --- hooks of KmsProvider: KMS calls only (the rules are applied by base.py) ----------
    def _check_key_name(self, key_id, action):
        check_alias(key_id, action)

    def _check_measurement_format(self, key_id, measurement_format):
        if measurement_format != "sha384":
            raise InputError("create", f"key '{key_id}'", f"measurement_format {measurement_format} is not supported by provider aws: KMS "
                             "attestation conditions compare Nitro PCR values, which are sha384")

    def _check_trust(self, trust, action, obj):
        nitro_pcr(trust)  # the policy's condition tests one PCR

    def _load_key(self, key_id, action):
        # Releasing a lock changes nothing of the key: allowed on a key scheduled for deletion.
        return self._load(key_id, action, allow_pending=action == "release the rotation lock on")

    # --- reads -----------------------------------------------------------------------
    def _load(self, key_id, action, allow_pending=True):
        """Return (state, internal). ``internal`` holds KMS ids, tags and the primary policy."""
        self.check_key_name(key_id, action)
        obj = f"key '{key_id}'"
        primary_kid = self._alias_target(key_id, action, obj)
        if primary_kid is None:
            raise NotFoundError(action, obj, f"it does not exist in {self.aws.where()}")
        aliases = own_aliases(key_id, self._aliases(key_id + "/", action, obj))
        pattern = re.compile("^" + re.escape(key_id) + "/v(" + GENERATION + ")$")
        versions, internal = [], {"keys": {}, "tags": {}, "meta": {}}
        for name, kid in aliases.items():
            match = pattern.match(name)
            if not match:
                continue
            number = int(match.group(1))
            meta = self._kms("describe_key", action, obj, KeyId=kid)["KeyMetadata"]
            tags = self._tags(kid, action, obj)
            if tags.get(TAG_KEY_ID) == name:
                raise ProviderError(action, obj, f"alias {name} is key '{name}' of alfred.tee_kms, made before key ids in another "
                                    f"key's namespace were refused, and it would be version {number} of this key: move the users "
                                    f"of '{name}' to a key under another name, then delete the alias {name}")
            if tags.get(TAG_KEY_ID) != key_id or tags.get(TAG_VERSION) != str(number):
                raise ProviderError(action, obj, f"alias {name} targets KMS key {kid}, which is not tagged as version {number} of "
                                    f"{key_id} ({TAG_KEY_ID}, {TAG_VERSION}); fix or delete that alias")
            internal["keys"][number], internal["tags"][number], internal["meta"][number] = kid, tags, meta
            versions.append({"version": number, "state": STATE_MAP.get(meta["KeyState"], "disabled"),
                             "created_at": _iso(meta.get("CreationDate")), "kms_state": meta["KeyState"]})
        versions.sort(key=lambda v: v["version"])
        primary = [n for n, kid in internal["keys"].items() if kid == primary_kid]
        if not primary:
            raise ProviderError(action, obj, f"the alias targets KMS key {primary_kid}, which is not one of its versions "
                                f"(no alias {key_id}/v<n> targets it); keys not created by alfred.tee_kms cannot be managed")
        primary_version = primary[0]
        mine = set(internal["keys"].values())
        for name, kid in sorted(aliases.items()):
            # Lock, snapshot and replay aliases always target a version key (the primary when
            # made): one that does not would have this key read another key's records.
            if kid not in mine:
                raise ProviderError(action, obj, f"alias {name} targets KMS key {kid}, which is not one of its versions (no alias "
                                    f"{key_id}/v<n> targets it); alfred.tee_kms never makes such an alias: confirm nobody relies "
                                    "on it, then delete it")
        ptags = internal["tags"][primary_version]
        text = self._policy_text(primary_kid, action, obj)
        try:
            doc = policy.parse(text)
        except policy.PolicyError as exc:
            raise ProviderError(action, obj, f"the key policy of version {primary_version} cannot be read: {exc}") from None
        pmeta = internal["meta"][primary_version]
        pending = _iso(pmeta.get("DeletionDate")) if pmeta["KeyState"] == "PendingDeletion" else None
        snapshot_kid = aliases.get(key_id + SNAPSHOT_SUFFIX)
        by_kid = {kid: internal["tags"][n] for n, kid in internal["keys"].items()}
        lock_found = self.lock.state(key_id, aliases, lambda kid: by_kid.get(kid) or self._tags(kid, action, obj), action, obj)
        lock = lock_found["lock"]
        snapshot = read_record(by_kid.get(snapshot_kid) or self._tags(snapshot_kid, action, obj), "snapshot") if snapshot_kid else None
        state = {
            "key_id": key_id,
            "description": pmeta.get("Description") or "",
            "created_at": versions[0]["created_at"] if versions else None,
            "measurement_format": ptags.get(TAG_FORMAT, "sha384"),
            "env": ptags.get(TAG_ENV),
            "primary_version": primary_version,
            "versions": [{k: v for k, v in entry.items() if k != "kms_state"} for entry in versions],
            "allowed_measurements": policy.allowed_measurements(doc),
            "attestation_trust": read_record(ptags, "trust") or {},
            "lock": lock,
            "snapshot": snapshot,
            "pending_deletion_at": pending,
        }
        internal.update(primary_kid=primary_kid, policy_text=text, policy=doc, aliases=aliases,
                        lock=lock_found, snapshot_kid=snapshot_kid, arn=pmeta["Arn"])
        if pending and not allow_pending:
            raise ConflictError(action, obj, f"it is scheduled for deletion on {pending}")
        return state, internal

    def describe_key(self, key_id):
        return self._load(key_id, "read")[0]

    # --- key lifecycle ---------------------------------------------------------------
    def _new_version_key(self, key_id, version, policy_text, tags: dict, description, action, obj) -> str:
        all_tags = {TAG_KEY_ID: key_id, TAG_VERSION: str(version)}
        all_tags.update(tags)
        meta = self._kms("create_key", action, obj, Policy=policy_text, Description=description or f"alfred.tee_kms {key_id} version {version}",
                         KeyUsage="ENCRYPT_DECRYPT", KeySpec="SYMMETRIC_DEFAULT",
                         Tags=[{"TagKey": k, "TagValue": v} for k, v in all_tags.items()])["KeyMetadata"]
        self._wait_state(meta["KeyId"], "Enabled", action, obj)
        return meta["KeyId"]

    def _do_create_key(self, key_id, allowed_measurements, measurement_format, trust, description, env):
        obj = f"key '{key_id}'"
        cond_key = policy.condition_key(nitro_pcr(trust))
        if self._alias_target(key_id, "create", obj):
            raise ConflictError("create", obj, "it already exists")
        identity = self.aws.call("sts", "get_caller_identity", "create", obj)
        account, partition = identity["Account"], identity["Arn"].split(":")[1]
        text = policy.build_policy(account, allowed_measurements, cond_key, partition)
        tags = {TAG_FORMAT: measurement_format}
        if env:
            tags[TAG_ENV] = env
        if trust:
            tags.update(record_tags("trust", trust))
        v1_alias = f"{key_id}/v1"
        # A create that died after making version 1 left its alias: finish that one instead of
        # making a second key.
        kid = self._alias_target(v1_alias, "create", obj)
        if kid is None:
            kid = self._new_version_key(key_id, 1, text, tags, description, "create", obj)
            if not self._create_alias(v1_alias, kid, "create", obj):
                self._orphan(kid)
                raise ConflictError("create", obj, "another run is creating it right now")
        else:
            found = self._tags(kid, "create", obj)
            if found.get(TAG_KEY_ID) != key_id or found.get(TAG_VERSION) != "1":
                raise ConflictError("create", obj, f"alias {v1_alias} exists and targets a key that is not version 1 of it")
            self._put_policy(kid, text, "create", obj)
            self._tag(kid, tags, "create", obj)
        if not self._create_alias(key_id, kid, "create", obj):
            raise ConflictError("create", obj, "it already exists")
        return self.describe_key(key_id)

    def _orphan(self, kid):
        """Schedule a never-used key that lost a creation race for deletion (best effort)."""
        try:
            self._kms("schedule_key_deletion", "clean up", f"unused KMS key {kid}", KeyId=kid, PendingWindowInDays=rules.MIN_PENDING_DAYS)
        except TeeKmsError:
            pass

    def _do_set_attestation_trust(self, state, backend, trust):
        action = "update attestation trust of"
        key_id = state["key_id"]
        cond_key = policy.condition_key(nitro_pcr(trust))
        # The PCR the policy tests follows nitro_pcrs: rewrite the statements first.
        self._write_policies(state, backend, state["allowed_measurements"], action, cond_key=cond_key)
        for number in self._write_order(state, backend, enabled_only=False):
            kid, tags = backend["keys"][number], backend["tags"][number]
            label = f"version {number} of key '{key_id}'"
            if trust:
                self._put_record(kid, tags, "trust", trust, action, label)
            elif record_tag_keys(tags, "trust"):
                self._untag(kid, record_tag_keys(tags, "trust"), action, label)

    def _do_record_env(self, state, backend, env):
        action = "record the environment of"
        key_id = state["key_id"]
        # Every version: a rollback makes an older version primary again, and the env is read there.
        for number in self._write_order(state, backend, enabled_only=False):
            self._tag(backend["keys"][number], {TAG_ENV: env}, action, f"version {number} of key '{key_id}'")

    def _do_schedule_key_deletion(self, state, backend, pending_days):
        obj = f"key '{state['key_id']}'"
        # Non-primary versions first: until the primary is scheduled the key reads as live, so
        # an interrupted run is simply repeated.
        for number in self._write_order(state, backend, enabled_only=False):
            if backend["meta"][number]["KeyState"] != "PendingDeletion":
                self._schedule(backend["keys"][number], pending_days, "schedule deletion of", obj)

    def _schedule(self, kid, days, action, obj):
        try:
            self._kms("schedule_key_deletion", action, obj, KeyId=kid, PendingWindowInDays=days)
        except ProviderError as exc:
            if "KMSInvalidState" not in exc.cause:
                raise
        self._wait_state(kid, "PendingDeletion", action, obj)

    # --- versions --------------------------------------------------------------------
    def _do_create_version(self, state, backend, version):
        action = "create a version of"
        key_id = state["key_id"]
        obj = f"key '{key_id}'"
        account, partition = self._account(backend["arn"])
        cond_key = policy.own_condition_key(backend["policy"]) or policy.condition_key(nitro_pcr(state["attestation_trust"]))
        try:
            # The new version starts with the primary's policy: foreign statements carry over.
            text = policy.merge(backend["policy_text"], state["allowed_measurements"], cond_key, account, partition)
        except policy.PolicyError as exc:
            raise ProviderError(action, obj, f"the primary version's key policy cannot be reused: {exc}") from None
        ptags = backend["tags"][state["primary_version"]]
        tags = {TAG_FORMAT: state["measurement_format"]}
        tags.update({k: v for k, v in ptags.items() if k in record_tag_keys(ptags, "trust") or k == TAG_ENV})
        kid = self._new_version_key(key_id, version, text, tags, None, action, f"version {version} of key '{key_id}'")
        if not self._create_alias(f"{key_id}/v{version}", kid, action, obj):
            self._orphan(kid)
            raise ConflictError(action, f"version {version} of key '{key_id}'", "another run created it at the same time")

    def _do_set_primary(self, state, backend, version):
        self._point_alias(state["key_id"], backend["keys"][version], "promote a version of")

    def _point_alias(self, key_id, kid, action):
        obj = f"key '{key_id}'"
        self._kms("update_alias", action, obj, AliasName=key_id, TargetKeyId=kid)
        wait_for(lambda: self._alias_target(key_id, action, obj) == kid, action, obj, "the alias to target the new primary version")

    def _do_set_version_state(self, state, backend, version, target, pending_days):
        action = "change the state of a version of"
        key_id = state["key_id"]
        kid = backend["keys"][version]
        kms_state = backend["meta"][version]["KeyState"]
        obj = f"version {version} of key '{key_id}'"
        if target == "destroy_scheduled":
            self._schedule(kid, pending_days, action, obj)
            return
        if kms_state == "PendingDeletion":
            self._kms("cancel_key_deletion", action, obj, KeyId=kid)  # leaves the key Disabled
            self._wait_state(kid, "Disabled", action, obj)
        if target == "disabled":
            self._kms("disable_key", action, obj, KeyId=kid)
            self._wait_state(kid, "Disabled", action, obj)
            return
        # A version coming back must enforce today's allow-list, not the one it was disabled with.
        account, partition = self._account(backend["arn"])
        cond_key = policy.own_condition_key(backend["policy"]) or policy.condition_key(nitro_pcr(state["attestation_trust"]))
        current = self._policy_text(kid, action, obj)
        try:
            merged = policy.merge(current, state["allowed_measurements"], cond_key, account, partition)
        except policy.PolicyError as exc:
            raise ProviderError(action, obj, f"its key policy cannot be updated: {exc}") from None
        if not policy.equivalent(current, merged):
            self._put_policy(kid, merged, action, obj)
        self._kms("enable_key", action, obj, KeyId=kid)
        self._wait_state(kid, "Enabled", action, obj)

    # --- attestation policy ----------------------------------------------------------
    def _write_order(self, state, internal, enabled_only=True) -> list:
        """Versions to write, non-primary first and the primary last."""
        numbers = [v["version"] for v in state["versions"]
                   if not enabled_only or internal["meta"][v["version"]]["KeyState"] == "Enabled"]
        primary = state["primary_version"]
        return [n for n in numbers if n != primary] + ([primary] if primary in numbers else [])

    def _plan_policies(self, state, internal, measurements, action, cond_key=None, order=None) -> list:
        """(version, kid, before, after) for every enabled version whose policy must change.

        Computed for all versions before anything is written, so a policy that cannot be
        merged stops the change before it starts."""
        account, partition = self._account(internal["arn"])
        cond_key = cond_key or policy.own_condition_key(internal["policy"]) or policy.condition_key(nitro_pcr(state["attestation_trust"]))
        plan = []
        for number in order or self._write_order(state, internal):
            kid = internal["keys"][number]
            obj = f"version {number} of key '{state['key_id']}'"
            current = internal["policy_text"] if kid == internal["primary_kid"] else self._policy_text(kid, action, obj)
            try:
                merged = policy.merge(current, measurements, cond_key, account, partition)
            except policy.PolicyError as exc:
                raise ProviderError(action, obj, f"its key policy cannot be updated: {exc}") from None
            if not policy.equivalent(current, merged):
                plan.append((number, kid, current, merged))
        return plan

    def _write_policies(self, state, internal, measurements, action, cond_key=None, order=None):
        for number, kid, dummy, merged in self._plan_policies(state, internal, measurements, action, cond_key, order):
            self._put_policy(kid, merged, action, f"version {number} of key '{state['key_id']}'")

    def policy_diff(self, key_id, measurements) -> dict:
        """Readable before/after key policies (per version) that set_allowed_measurements would write."""
        state, internal = self._load(key_id, "update the allow-list of", allow_pending=False)
        plan = self._plan_policies(state, internal, list(measurements), "update the allow-list of")
        return {"before": {f"version {n}": policy.pretty(b) for n, dummy, b, dummy in plan},
                "after": {f"version {n}": policy.pretty(a) for n, dummy, dummy, a in plan}}

    def _do_set_allowed_measurements(self, state, backend, measurements):
        self._write_policies(state, backend, list(measurements), "update the allow-list of")

    def _do_restore(self, state, backend, primary_version, allowed_measurements):
        key_id = state["key_id"]
        # Order: every check and every merged policy is computed before the first write, so a
        # refusal changes nothing. Then the policies (current primary last), then the alias.
        # - The alias is the commit point. Until it moves, reads still show the current
        #   primary with its current allow-list (written last), so an interrupted restore
        #   reads as "not restored" and a re-run repeats it; nothing is left half-visible.
        # - When the alias moves, the restored allow-list is already in force on the version it
        #   points to, so callers never hit the restored primary under the rolled-back list.
        # - Policies first also revokes a rejected enclave image before traffic moves back.
        order = self._write_order(state, backend)
        self._write_policies(state, backend, list(allowed_measurements), "restore", order=order)
        if backend["primary_kid"] != backend["keys"][primary_version]:
            self._point_alias(key_id, backend["keys"][primary_version], "restore")

    def _version_policies(self, key_id, action):
        state, internal = self._load(key_id, action)
        out = []
        for number in self._write_order(state, internal):
            kid = internal["keys"][number]
            text = internal["policy_text"] if kid == internal["primary_kid"] else self._policy_text(kid, action, f"version {number} of key '{key_id}'")
            try:
                out.append((number, policy.parse(text)))
            except policy.PolicyError as exc:
                raise ProviderError(action, f"version {number} of key '{key_id}'", f"its key policy cannot be read: {exc}") from None
        return state, out

    def evaluate_policy(self, key_id, measurement) -> bool:
        """Would every enabled version's key policy let a caller attested with ``measurement``
        (None: no attestation) decrypt? Evaluates the policy text, see _aws_policy."""
        dummy, docs = self._version_policies(key_id, "evaluate the policy of")
        return bool(docs) and all(policy.evaluate(doc, measurement) for dummy, doc in docs)

    def policy_findings(self, key_id) -> list:
        state, docs = self._version_policies(key_id, "evaluate the policy of")
        out = []
        wanted = sorted(state["allowed_measurements"])
        cond_key = policy.condition_key(nitro_pcr(state["attestation_trust"]))
        for number, doc in docs:
            out.extend(f"version {number}: {text}" for text in policy.findings(doc, policy.allowed_measurements(doc)))
            if sorted(policy.allowed_measurements(doc)) != wanted:
                out.append(f"version {number}: its allow-list differs from the primary version's")
            own = policy.own_condition_key(doc)
            if own and own != cond_key:
                out.append(f"version {number}: the policy tests {own} but the key's trust configures {cond_key}")
        if not docs:
            out.append("no version is enabled")
        return out

    # --- data path -------------------------------------------------------------------
    @staticmethod
    def _context(context) -> dict:
        return {str(k): str(v) for k, v in (context or {}).items()}

    def _do_encrypt(self, state, backend, plaintext, context, version):
        obj = f"data under version {version} of key '{state['key_id']}'"
        blob = self._kms("encrypt", "encrypt", obj, KeyId=backend["keys"][version], Plaintext=plaintext,
                         EncryptionContext=self._context(context))["CiphertextBlob"]
        return f"{CIPHERTEXT_PREFIX}.{version}.{base64.b64encode(blob).decode('ascii')}"

    @staticmethod
    def parse_ciphertext(ciphertext):
        try:
            prefix, version, blob = ciphertext.split(".")
            if prefix != CIPHERTEXT_PREFIX or not version.isdigit():
                raise ValueError
            return int(version), base64.b64decode(blob, validate=True)
        except (ValueError, AttributeError, binascii.Error, TypeError):
            raise InputError("decrypt", "ciphertext", f"it is not a {CIPHERTEXT_PREFIX} ciphertext of this KMS") from None

    def _ciphertext_version(self, key_id, ciphertext):
        return self.parse_ciphertext(ciphertext)[0]

    def _decrypt_allowlist(self, state, backend, version, obj):
        """The allow-list in the version's own key policy: what KMS enforces for that version."""
        entry = next((v for v in state["versions"] if v["version"] == version), None)
        if entry is None or entry["state"] != "enabled":
            return state["allowed_measurements"]  # refused after the gate (no such version, or not enabled); its policy is not read
        kid = backend["keys"][version]
        text = backend["policy_text"] if kid == backend["primary_kid"] else self._policy_text(kid, "decrypt", obj)
        return policy.allowed_measurements(policy.parse(text))

    def _do_decrypt(self, state, backend, version, ciphertext, context, evidence, obj, remember):
        """Refused unattested or disallowed callers locally (base.py), then ask KMS (see decrypt_at_kms).

        A ``nitro`` caller gets a RecipientCiphertext: KMS encrypts the plaintext to the
        enclave, and only the enclave can open it."""
        raw, fmt = evidence
        remember()  # the replay aliases are the only guard against two callers with one evidence: before KMS answers
        return self._kms_decrypt(backend["keys"][version], ciphertext, context, raw if fmt == "nitro" else None, obj)

    def _remember_evidence(self, state, backend, tokens, now, window, obj):
        self._remember(state["key_id"], backend, tokens, now, window, obj)

    def decrypt_at_kms(self, key_id, ciphertext, context, attestation=None):
        """KMS's own decision, no local pre-check: what the enforcement probes ask on AWS.

        ``attestation``: a ``nitro`` document (sent as Recipient) or None (no Recipient).
        Returns a RecipientCiphertext or the plaintext; raises AccessDeniedError when KMS
        refuses."""
        version, dummy = self.parse_ciphertext(ciphertext)
        obj = f"a ciphertext under version {version} of key '{key_id}'"
        state, internal = self._load(key_id, "decrypt", allow_pending=False)
        rules.check_decrypt_version(state, version, obj)
        kid = internal["keys"][version]
        raw = None
        if attestation:
            if attestation.get("format") != "nitro":
                raise InputError("decrypt", obj, "only a nitro attestation document can be sent to AWS KMS as Recipient")
            try:
                raw = decode_document(attestation["document"])
            except AttestationError as exc:
                raise InputError("decrypt", obj, f"the attestation document cannot be read ({exc})") from None
        return self._kms_decrypt(kid, ciphertext, context, raw, obj)

    def _kms_decrypt(self, kid, ciphertext, context, recipient_document, obj):
        dummy, blob = self.parse_ciphertext(ciphertext)
        kwargs = {"CiphertextBlob": blob, "EncryptionContext": self._context(context), "KeyId": kid}
        if recipient_document is not None:
            # AWS KMS checks the document itself and answers CiphertextForRecipient: the
            # plaintext enveloped to the RSA key inside the document.
            kwargs["Recipient"] = {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": recipient_document}
        try:
            answer = self.aws.client("kms").decrypt(**kwargs)
        except Exception as exc:  # noqa: BLE001 - translated below, never re-raised raw
            code = error_code(exc)
            if code in ("InvalidCiphertextException", "IncorrectKeyException"):
                raise AccessDeniedError("decrypt", obj, "the ciphertext does not authenticate under this encryption context") from None
            if hasattr(exc, "response"):
                raise self.aws.translate(exc, "decrypt", obj) from None
            raise ProviderError("decrypt", obj, self.aws.scrub(f"{self.aws.where()} could not be reached ({exc})")) from None
        if recipient_document is None:
            return answer["Plaintext"]
        return recipient_answer(answer, obj, self.aws.where())

    def _remember(self, key_id, internal, tokens, now, window, obj):
        """The replay cache of the decrypt gate as aliases: expired ones are dropped, then one
        alias per token is created; an existing alias means the evidence was used before.

        Only aliases named exactly ``<key>/tee-kms-seen/<token>`` that target one of the key's
        versions are the cache: another key nested under that prefix is never counted or deleted."""
        prefix = key_id + SEEN_INFIX
        if not all(isinstance(token, str) and re.fullmatch(SEEN_TOKEN, token) for token in tokens):
            raise ProviderError("decrypt", obj, "the replay cache cannot record this evidence: its token is not of the form the "
                                "cache's aliases use")
        mine = set(internal["keys"].values())
        pattern = re.compile("^" + re.escape(prefix) + SEEN_TOKEN + "$")
        live = 0
        for name, entry in self._alias_entries(prefix, "decrypt", obj).items():
            if not pattern.match(name) or entry["TargetKeyId"] not in mine:
                continue
            created = entry.get("CreationDate")
            if isinstance(created, datetime.datetime) and created.timestamp() + window < now:
                self._delete_alias(name, "decrypt", obj)
            else:
                live += 1
        if live + len(tokens) > SEEN_CAPACITY:
            raise rules.replay_cache_full(obj, live, SEEN_CAPACITY)
        for token in tokens:
            try:
                self._kms("create_alias", "decrypt", obj, AliasName=prefix + token, TargetKeyId=internal["primary_kid"])
            except ProviderError as exc:
                if "AlreadyExists" not in exc.cause:
                    raise
                raise rules.replay_refusal(obj) from None

    # --- rotation coordination -------------------------------------------------------
    def _do_save_snapshot(self, state, backend, snapshot):
        action = "record a snapshot of"
        key_id = state["key_id"]
        obj = f"key '{key_id}'"
        alias = key_id + SNAPSHOT_SUFFIX
        old_kid = backend["snapshot_kid"]
        by_kid = {kid: backend["tags"][n] for n, kid in backend["keys"].items()}
        if not snapshot:
            if old_kid:
                self._delete_alias(alias, action, obj)
                self._untag(old_kid, record_tag_keys(by_kid.get(old_kid, {}), "snapshot"), action, obj)
            return
        kid = backend["primary_kid"]
        # Write the record, then point the alias at it (readers follow the alias, so they see
        # the old snapshot or the new one, never a mix), then drop the old record.
        self._put_record(kid, by_kid[kid], "snapshot", dict(snapshot), action, obj)
        if old_kid is None:
            if not self._create_alias(alias, kid, action, obj):
                self._kms("update_alias", action, obj, AliasName=alias, TargetKeyId=kid)
        elif old_kid != kid:
            self._kms("update_alias", action, obj, AliasName=alias, TargetKeyId=kid)
        wait_for(lambda: self._alias_target(alias, action, obj) == kid, action, obj, "the snapshot alias to be visible")
        if old_kid and old_kid != kid:
            self._untag(old_kid, record_tag_keys(by_kid.get(old_kid) or self._tags(old_kid, action, obj), "snapshot"), action, obj)

    def _do_acquire_lock(self, state, backend, owner, ttl_seconds, break_stale, takeover_from):
        # Numbered aliases and a record on the key they target (aws_lock.py): not one atomic record.
        return self.lock.acquire(state["key_id"], backend["lock"], backend["primary_kid"], owner, ttl_seconds, break_stale, takeover_from)

    def _do_release_lock(self, state, backend, owner):
        return self.lock.release(state["key_id"], backend["lock"], owner)
