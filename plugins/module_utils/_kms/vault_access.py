# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Who may use a ``vault`` key: the Vault/OpenBao objects a Vault administrator writes once per key.

Private module_utils: the API may change without notice between releases.

Three objects decide who reaches a key's plaintext, and the identity that runs rotations
must not be able to change any of them except the allow-list:

- the ACL policy ``tee-kms-<key>-decrypt``: decrypt on this key, nothing else;
- the JWT auth role ``tee-kms-<key>``: it admits only tokens whose audience is the key's
  ``login_audience`` (a token an enclave mints inside itself and never hands out, unlike the
  attestation tokens its public endpoint gives to anyone), expiring exactly at their ``exp``
  (no leeway beyond a few seconds of clock skew), and gives a one-use, one-minute token with
  the decrypt policy only. Its ``bound_claims`` on the measurement claim are the allow-list;
- the ACL policy ``tee-kms-<key>-rotation`` of the rotation identity: exactly the paths a
  rotation of this key uses, with ``allowed_parameters`` pinning what it may write. It cannot
  write any policy, create or reshape any role, read or decrypt data, trim, export or
  reconfigure a Transit key, or touch another key or another mount.

``setup`` writes them (module ``vault_key_access``, playbook ``vault_setup.yml``);
``role_problems`` is how the provider refuses to rotate a key whose role would accept a
bearer token.
"""

from __future__ import annotations

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.trust import DEFAULTS as trust_defaults
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import InputError, NotFoundError

# The attested caller's Vault token decrypts once and lives one minute (seconds, as Vault reads them back).
LOGIN_TOKEN_TTL = 60
# The role refuses a login token the second its exp has passed, and one whose nbf has not come;
# only this much clock difference between the attestation service and Vault is tolerated. Vault's
# defaults (150 s expiration leeway, 60 s clock skew) would let a captured token log in minutes late.
EXPIRATION_LEEWAY = -1
NOT_BEFORE_LEEWAY = -1
CLOCK_SKEW_LEEWAY = 5
# The bound claim of a role that admits nobody yet (written before the key's create sets its
# allow-list): no attestation token carries it.
NOBODY = "tee-kms:no-enclave-allowed-yet"
ADMIN = "set up Vault access for"


def names(key_id: str) -> dict:
    return {"decrypt_policy": f"tee-kms-{key_id}-decrypt", "role": f"tee-kms-{key_id}", "rotation_policy": f"tee-kms-{key_id}-rotation"}


def bound_claim(trust: dict) -> str:
    """The JWT auth role's bound_claims key: Vault reads a dotted claim path as a JSON pointer."""
    claim = (trust or {}).get("measurement_claim") or trust_defaults["measurement_claim"]
    return "/" + claim.replace(".", "/") if "." in claim else claim


def decrypt_policy(transit: str, key_id: str) -> str:
    # Decrypt on this key only: no encrypt, no key reads, nothing under the records.
    return f'path "{transit}/decrypt/{key_id}" {{\n  capabilities = ["update"]\n}}\n'


def rotation_policy(transit: str, kv: str, jwt: str, key_id: str) -> str:
    """The rotation identity's policy for one key: what create, rotate, allowlist and rollback write."""
    role = names(key_id)["role"]
    return f"""# The identity that rotates key {key_id} (written by alfred.tee_kms.vault_key_access).
# Transit: read the key, create it once (aes256-gcm96, derived, nothing exportable), add versions,
# encrypt canaries. No decrypt, config, trim, export or delete.
path "{transit}/keys/{key_id}" {{
  capabilities = ["read", "update"]
  allowed_parameters = {{
    "type" = ["aes256-gcm96"]
    "derived" = [true]
  }}
}}
path "{transit}/keys/{key_id}/rotate" {{
  capabilities = ["update"]
  denied_parameters = {{
    "managed_key_name" = []
    "managed_key_id" = []
  }}
}}
path "{transit}/encrypt/{key_id}" {{
  capabilities = ["update"]
}}
# The key's records (primary version, lock, snapshot): written with check-and-set, never deleted.
path "{kv}/data/tee-kms/{key_id}/*" {{
  capabilities = ["create", "read", "update"]
}}
path "{kv}/metadata/tee-kms/{key_id}/*" {{
  capabilities = ["read"]
}}
# The allow-list: the bound claims of the key's existing JWT role, and nothing else of it.
path "auth/{jwt}/role/{role}" {{
  capabilities = ["read", "update"]
  allowed_parameters = {{
    "role_type" = ["jwt"]
    "bound_claims" = []
  }}
}}
"""


def role_body(login_audience: str, claim: str, decrypt_policy_name: str, measurements) -> dict:
    return {
        "role_type": "jwt",
        "user_claim": "sub",
        "bound_audiences": [login_audience],
        "bound_claims_type": "string",
        "bound_claims": {claim: sorted(measurements) if measurements else [NOBODY]},
        "token_policies": [decrypt_policy_name],
        "token_no_default_policy": True,
        "token_policies_template_claims": False,
        "token_ttl": LOGIN_TOKEN_TTL,
        "token_max_ttl": LOGIN_TOKEN_TTL,
        "token_explicit_max_ttl": 0,
        "token_period": 0,
        "token_num_uses": 1,
        "token_type": "default",
        "expiration_leeway": EXPIRATION_LEEWAY,
        "not_before_leeway": NOT_BEFORE_LEEWAY,
        "clock_skew_leeway": CLOCK_SKEW_LEEWAY,
    }


# What the provider compares of a role read back from the server: everything of role_body that
# decides who logs in and what the login gives (bound_claims, the allow-list, is the rotation's).
_CHECKED = tuple(name for name in role_body("a", "m", "p", ["x"]) if name != "bound_claims")


def role_problems(role, trust: dict, key_id: str) -> list:
    """Why the key's JWT role would not protect it as documented; [] when it does."""
    if not role:
        return [f"the JWT role {names(key_id)['role']} does not exist"]
    login_audience = (trust or {}).get("login_audience")
    if not login_audience:
        return ["the key's attestation_trust has no login_audience, so its role cannot tell a login token from a public attestation token"]
    wanted = role_body(login_audience, bound_claim(trust), names(key_id)["decrypt_policy"], ["x"])
    problems = [f"{name} is {role.get(name)!r}, not {wanted[name]!r}" for name in _CHECKED if _normal(role.get(name)) != _normal(wanted[name])]
    extra = sorted(set(role.get("bound_claims") or {}) - {bound_claim(trust)})
    if extra:
        problems.append(f"bound_claims binds other claims ({', '.join(extra)}) than the measurement claim {bound_claim(trust)}")
    if role.get("claim_mappings"):
        problems.append("claim_mappings is set")
    return problems


def _normal(value):
    return sorted(value) if isinstance(value, list) else value


def role_problem_error(action: str, key_id: str, problems: list):
    return InputError(action, f"key '{key_id}'", "its Vault access is not set up as the collection requires ("
                      + "; ".join(problems) + "); a Vault administrator runs playbooks/vault_setup.yml "
                      "(module alfred.tee_kms.vault_key_access) for this key")


class AccessSetup:
    """Read, compare and write the access objects of one key with the administrator's client."""

    def __init__(self, provider, key_id: str, login_audience: str, measurement_claim=None, rotation_approle=None,
                 approle_mount_point="approle"):
        self.provider = provider
        self.key_id = key_id
        self.login_audience = login_audience
        self.claim = bound_claim({"measurement_claim": measurement_claim})
        self.approle = rotation_approle
        self.approle_mount = (approle_mount_point or "approle").strip("/")
        self.names = names(key_id)
        self.obj = f"key '{key_id}'"

    def _get(self, path):
        try:
            return self.provider._request("get", path, ADMIN, self.obj).get("data")
        except NotFoundError:
            return None

    def _policy(self, name):
        found = self._get(f"sys/policies/acl/{name}")
        return (found or {}).get("policy")

    def current(self) -> dict:
        p = self.provider
        role = self._get(f"auth/{p.jwt}/role/{self.names['role']}")
        state = {"decrypt_policy": self._policy(self.names["decrypt_policy"]),
                 "rotation_policy": self._policy(self.names["rotation_policy"]),
                 "role": {name: role.get(name) for name in _CHECKED + ("bound_claims",)} if role else None}
        if self.approle:
            found = self._get(f"auth/{self.approle_mount}/role/{self.approle}")
            if found is None:
                raise InputError(ADMIN, self.obj, f"the AppRole role '{self.approle}' does not exist on mount {self.approle_mount}")
            state["approle_policies"] = sorted(found.get("token_policies") or [])
        return state

    def wanted(self, current: dict) -> dict:
        p = self.provider
        kept = []
        role = current.get("role")
        if role and role.get("bound_audiences") == [self.login_audience]:
            # The role already admits login tokens only: keep the allow-list the key has.
            kept = [m for m in ((role.get("bound_claims") or {}).get(self.claim) or []) if m != NOBODY]
        body = role_body(self.login_audience, self.claim, self.names["decrypt_policy"], kept)
        state = {"decrypt_policy": decrypt_policy(p.transit, self.key_id),
                 "rotation_policy": rotation_policy(p.transit, p.kv, p.jwt, self.key_id),
                 "role": body}
        if self.approle:
            state["approle_policies"] = sorted(set(current["approle_policies"]) | {self.names["rotation_policy"]})
        return state

    def apply(self, check_mode: bool) -> dict:
        if not self.login_audience:
            raise InputError(ADMIN, self.obj, "login_audience is required: the audience of the tokens enclaves present to Vault's JWT "
                             "login, which their public attestation endpoint never issues")
        p = self.provider
        before = self.current()
        after = self.wanted(before)
        changed = [name for name in after if _comparable(before.get(name)) != _comparable(after[name])]
        if changed and not check_mode:
            if "decrypt_policy" in changed:
                p._request("post", f"sys/policies/acl/{self.names['decrypt_policy']}", ADMIN, self.obj, {"policy": after["decrypt_policy"]})
            if "rotation_policy" in changed:
                p._request("post", f"sys/policies/acl/{self.names['rotation_policy']}", ADMIN, self.obj, {"policy": after["rotation_policy"]})
            if "role" in changed:
                p._request("post", f"auth/{p.jwt}/role/{self.names['role']}", ADMIN, self.obj, after["role"])
            if "approle_policies" in changed:
                p._request("post", f"auth/{self.approle_mount}/role/{self.approle}", ADMIN, self.obj,
                           {"token_policies": after["approle_policies"]})
        return {"changed": bool(changed), "updated": changed, "before": before, "after": after, "names": dict(self.names)}


def _comparable(value):
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    return _normal(value)
