# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers for the module_utils tests: real files, real keys, no mocks."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.alfred import signed_message

M1 = hashlib.sha384(b"enclave-image-1").hexdigest()
M2 = hashlib.sha384(b"enclave-image-2").hexdigest()
M3 = hashlib.sha384(b"enclave-image-3").hexdigest()


def file_bytes(path):
    """The exact bytes of a file, or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def temp_files(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


class Signer:
    """An enclave signing key that produces real ``alfred`` evidence."""

    def __init__(self, key_id=None):
        # key_id: the key whose decrypt gate the evidence is for (operation_purpose kms-decrypt:<key_id>).
        self.key_id = key_id
        self.key = Ed25519PrivateKey.generate()
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public_b64 = base64.b64encode(raw).decode("ascii")

    def evidence(self, measurement, now=None, tamper=None, **fields):
        now = int(time.time()) if now is None else now
        doc = {
            "runtime": "alfred-enclave/1.4",
            "measurement": measurement,
            "challenge_nonce": secrets.token_hex(16),
            "issued_at": now - 5,
            "expires_at": now + 55,
            "operation_purpose": f"kms-decrypt:{self.key_id}" if self.key_id else "token-decrypt",
            "request_id": "req-" + secrets.token_hex(4),
            "evidence_issued_at": now - 1,
        }
        doc.update(fields)
        doc["signature"] = base64.b64encode(self.key.sign(signed_message(doc))).decode("ascii")
        if tamper:
            doc.update(tamper)  # changed after signing
        return doc

    def attestation(self, measurement, **kwargs):
        return {"format": "alfred", "document": json.dumps(self.evidence(measurement, **kwargs))}
