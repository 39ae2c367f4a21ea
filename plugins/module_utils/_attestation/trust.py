# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The attestation trust of a key: which evidence a key's decrypt gate accepts.

Private module_utils: the API may change without notice between releases.
"""

from __future__ import annotations

import base64
import binascii

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import InputError


def normalize_trust(trust) -> dict:
    """Keep only the known trust-anchor fields; validate what can be validated early."""
    trust = dict(trust or {})
    unknown = set(trust) - {"public_keys", "root_certificate", "jwks", "issuer", "audience", "algorithms",
                            "nitro_pcrs", "measurement_claim", "max_age"}
    if unknown:
        raise InputError("configure attestation trust for", "key", f"unknown fields {', '.join(sorted(unknown))}")
    keys = []
    for value in trust.get("public_keys") or []:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raw = b""
        if len(raw) != 32:
            raise InputError("configure attestation trust for", "key", "public_keys entries must be base64 of 32-byte Ed25519 public keys")
        keys.append(base64.b64encode(raw).decode("ascii"))
    trust["public_keys"] = keys
    return {name: value for name, value in trust.items() if value not in (None, [], {})}
