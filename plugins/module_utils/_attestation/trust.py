# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Attestation trust, defined once: which evidence is accepted, and how it is checked.

Private module_utils: the API may change without notice between releases.

A trust is a dict of the fields in ``FIELDS``. The same definition serves every place that
takes one: ``attestation_verify`` (option ``trust``), a key's stored trust (``kms_key``
option ``attestation_trust``, kept with the key and read by the decrypt gate of every
provider) and ``rotation_inputs`` (checked before a rotation starts):

- ``argument_spec()``: the Ansible argument spec of the fields (the suboptions of a trust
  dict): ``formats``, the fields each registered format declares, ``max_age``; no defaults, so
  that a stored trust records only what was given;
- ``DEFAULTS``: what an absent field means when evidence is verified;
- ``validate(trust, context)``: every check, with the wording of the caller (``TASK`` for
  attestation_verify, ``KEY`` for a trust kept with a key); a key's trust must be
  self-contained, so ``jwks_url`` is refused there (the decrypt gate never fetches keys);
- ``verify_options(trust, ...)``: the conversion to the verifiers' ``VerifyOptions``.
"""

from __future__ import annotations

import base64
import binascii
import os

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import registry
# MAX_FILE_BYTES and read_text_or_path stay importable from here (client.py and callers use them).
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.base import KEY, MAX_FILE_BYTES, TASK, read_text_or_path  # noqa: F401 pylint: disable=unused-import
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.common import FORMATS, AttestationError, VerifyOptions, loads_json, utcnow
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.jwt import ALGORITHMS
from ansible_collections.alfred.tee_kms.plugins.module_utils._common import deps
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import InputError

# The fields: ``formats``, every registered format's own fields (registry.trust_options), ``max_age``.
FIELDS = registry.COMMON_BEFORE + tuple(registry.trust_options()) + registry.COMMON_AFTER
# Fields only the trust dict has: attestation_verify's deprecated flat options predate them
# (its own max_age option is a freshness option), and so does every field of a newer format.
NOT_FLAT = tuple(name for name in FIELDS if name not in registry.flat_options())
# What an absent field means at verification time. A decrypt also requires fresh evidence:
# DECRYPT_MAX_AGE seconds unless the key's trust sets max_age.
DEFAULTS = {"nitro_pcrs": [0], "measurement_claim": "measurement", "clock_skew": 60}
DECRYPT_MAX_AGE = 300

# TASK (attestation_verify: the trust of one verification) and KEY (a trust kept with a key: kms_key, the
# decrypt gate, rotation_inputs) come from base.py, where the formats' own checks read them too.


def argument_spec() -> dict:
    """The trust fields as Ansible options (doc fragment alfred.tee_kms.attestation)."""
    return dict(
        formats=dict(type="list", elements="str", choices=list(FORMATS)),
        **registry.trust_options(),
        max_age=dict(type="int"),
    )


def _key_error(cause: str) -> InputError:
    return InputError("configure attestation trust for", "key", cause)


def _public_keys(values, context) -> list:
    keys = []
    for value in values or []:
        try:
            raw = base64.b64decode(value.strip() if context == TASK else value, validate=True)
        except (binascii.Error, ValueError, TypeError, AttributeError):
            raw = b""
        if len(raw) != 32:
            if context == KEY:
                raise _key_error("public_keys entries must be base64 of 32-byte Ed25519 public keys")
            raise InputError("load", f"public key '{str(value)[:12]}...'", "it is not the base64 of a 32-byte Ed25519 public key")
        keys.append(base64.b64encode(raw).decode("ascii"))
    return keys


def _root_certificate(value, context) -> str:
    deps.CRYPTOGRAPHY.check("the attestation trust")
    from cryptography import x509

    if context == KEY and not value.lstrip().startswith("-----") and not os.path.isfile(os.path.expanduser(value)):
        raise _key_error("root_certificate is neither PEM text nor the path of a PEM file")
    pem = read_text_or_path(value, "-----BEGIN", "root certificate file")
    try:
        x509.load_pem_x509_certificates(pem)
    except ValueError:
        if context == KEY:
            raise _key_error("root_certificate is not a PEM certificate") from None
        raise InputError("load", "the nitro root certificate", "it is not a PEM certificate") from None
    return pem.decode("utf-8", "replace")


def _formats(trust, context) -> list:
    formats = trust["formats"]
    if any(f not in FORMATS for f in formats) or len(set(formats)) != len(formats):
        cause = f"formats must be distinct values among {', '.join(FORMATS)}"
        raise _key_error(cause) if context == KEY else InputError("validate", f"formats {formats}", cause)
    # A format with a pinned root needs no anchor; jwt's jwks_url stands for jwks (refused later with a key).
    missing = [f for f in formats if not registry.attestation_format(f).anchored(trust)]
    if missing:
        cause = "; ".join(f"formats names {f} but {registry.attestation_format(f).anchor} is not set" for f in missing)
        raise _key_error(cause) if context == KEY else InputError("validate", "attestation trust", cause)
    return list(formats)


def accepted_formats(trust) -> list:
    """The evidence formats a key's trust accepts: its ``formats``, else those it holds an anchor for."""
    trust = trust or {}
    if trust.get("formats"):
        return list(trust["formats"])
    # A format with a pinned root (nitro) is derived only from an own anchor: its built-in root is
    # trusted only by a trust that names the format in formats.
    return [fmt for fmt in FORMATS if trust.get(registry.attestation_format(fmt).anchor)]


def _pcrs(pcrs, context) -> list:
    if any(not isinstance(p, int) or not 0 <= p < 32 for p in pcrs) or len(set(pcrs)) != len(pcrs):
        if context == KEY:
            raise _key_error("nitro_pcrs must be distinct PCR indexes 0..31")
        raise InputError("validate", f"nitro_pcrs {pcrs}", "PCR indexes must be distinct integers 0..31")
    return list(pcrs)


def parse_jwks(value, context):
    """A JWKS (or one JWK) from a dict, JSON text or the path of a JSON file."""
    if isinstance(value, dict):
        jwks = value
    else:
        text = str(value)
        if context == KEY:
            if not text.lstrip().startswith("{") and os.path.isfile(os.path.expanduser(text)):
                text = read_text_or_path(text, "{", "JWKS file").decode("utf-8", "replace")
            try:
                jwks = loads_json(text, "jwks")
            except AttestationError:
                raise _key_error("jwks is neither JSON nor a path to a JSON file") from None
        else:
            try:
                jwks = loads_json(read_text_or_path(text, "{", "JWKS file"), "the JWKS")
            except AttestationError:
                raise InputError("load", "the JWKS", "it is not JSON") from None
    return check_jwks(jwks, context)


def check_jwks(jwks, context):
    single = isinstance(jwks, dict) and "kty" in jwks and "keys" not in jwks
    if not single and (not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]):
        if context == KEY:
            raise _key_error("jwks has no non-empty 'keys' list")
        raise InputError("load", "the JWKS", "it has no non-empty 'keys' list")
    if single and context == TASK:
        return {"keys": [jwks]}
    return jwks  # a key's stored trust keeps the JWKS as it was given


def validate(trust, context: str = KEY) -> dict:
    """Check a trust and return its normal form: known fields only, values that say nothing
    (None, empty lists and dicts) dropped, public keys in canonical base64, the root
    certificate as PEM text and the JWKS as a dict (files named by a path are read).

    ``jwks_url`` is returned unresolved in the ``TASK`` context (``client.load_jwks`` fetches it)
    and refused in the ``KEY`` context.
    """
    trust = dict(trust or {})
    unknown = set(trust) - set(FIELDS)
    if unknown:
        raise _key_error(f"unknown fields {', '.join(sorted(unknown))}") if context == KEY else \
            InputError("validate", "attestation trust", f"unknown fields {', '.join(sorted(unknown))}")
    trust = {name: value for name, value in trust.items() if value not in (None, [], {})}
    trust["public_keys"] = _public_keys(trust.get("public_keys"), context)
    if trust.get("root_certificate"):
        trust["root_certificate"] = _root_certificate(trust["root_certificate"], context)
    if "nitro_pcrs" in trust:
        trust["nitro_pcrs"] = _pcrs(trust["nitro_pcrs"], context)
    if "formats" in trust:
        trust["formats"] = _formats(trust, context)
    if context == KEY:
        if "jwks_url" in trust:
            raise _key_error("jwks_url cannot be kept with a key (its decrypt gate never fetches keys); give the JWKS itself as jwks")
        if "jwks" in trust:
            trust["jwks"] = parse_jwks(trust["jwks"], context)
        wrong = [a for a in trust.get("algorithms") or [] if a not in ALGORITHMS]
        if wrong:
            raise _key_error(f"algorithms {', '.join(map(str, wrong))} are not among {', '.join(ALGORITHMS)}")
        if "max_age" in trust and (not isinstance(trust["max_age"], int) or trust["max_age"] < 0):
            raise _key_error("max_age must be a number of seconds, not negative")
    elif "jwks" in trust and "jwks_url" in trust:
        raise InputError("validate", "attestation trust", "jwks and jwks_url are mutually exclusive")
    if trust.get("login_audience") is not None and trust["login_audience"] == trust.get("audience"):
        cause = ("login_audience must differ from audience: the tokens an enclave hands to anyone who asks carry audience, "
                 "and a KMS login that accepts them accepts a bearer token")
        raise _key_error(cause) if context == KEY else InputError("validate", "attestation trust", cause)
    for fmt in registry.FORMAT_CLASSES:
        trust = fmt.check_trust(trust, context)
    return {name: value for name, value in trust.items() if value not in (None, [], {})}


# The trust kept with a key, in the form the providers store.
def normalize_trust(trust) -> dict:
    return validate(trust, KEY)


def verify_options(trust, *, jwks=None, max_age=None, nonce=None, request=None, now=None, clock_skew=None) -> VerifyOptions:
    """VerifyOptions for a validated trust; absent fields take ``DEFAULTS``. ``jwks`` overrides
    the trust's (a JWKS fetched from ``jwks_url``); ``max_age`` the trust's max_age."""
    trust = trust or {}
    root = trust.get("root_certificate")
    return VerifyOptions(
        formats=list(trust["formats"]) if trust.get("formats") else None,
        now=now or utcnow(),
        nonce=nonce,
        request=request,
        max_age=max_age if max_age is not None else trust.get("max_age"),
        public_keys=[base64.b64decode(k) for k in trust.get("public_keys", [])],
        root_certificate_pem=(root.encode("utf-8") if isinstance(root, str) else root) or None,
        nitro_pcrs=list(trust.get("nitro_pcrs") or DEFAULTS["nitro_pcrs"]),
        jwks=jwks if jwks is not None else trust.get("jwks"),
        issuer=trust.get("issuer"),
        audience=trust.get("audience"),
        login_audience=trust.get("login_audience"),
        algorithms=trust.get("algorithms") or None,
        measurement_claim=trust.get("measurement_claim") or DEFAULTS["measurement_claim"],
        clock_skew=clock_skew if clock_skew is not None else DEFAULTS["clock_skew"],
        trust=dict(trust),
    )
