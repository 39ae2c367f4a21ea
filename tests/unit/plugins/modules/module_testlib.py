# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Constants and helpers shared by the KMS module tests."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

try:
    from ansible.module_utils.testing import patch_module_args  # noqa: F401 pylint: disable=unused-import  # ansible-core 2.19+, re-exported
except ImportError:  # ansible-core 2.17 / 2.18 read the arguments from basic._ANSIBLE_ARGS
    @contextlib.contextmanager
    def patch_module_args(args=None):
        saved = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}))
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = saved

M1 = hashlib.sha384(b"enclave-image-1").hexdigest()
M2 = hashlib.sha384(b"enclave-image-2").hexdigest()
M3 = hashlib.sha384(b"enclave-image-3").hexdigest()


def materials(store_path):
    """Every secret the store holds, in the encodings a leak could take."""
    with open(store_path, "rb") as handle:
        doc = json.loads(handle.read())
    found = []
    for key in doc["keys"].values():
        for version in key["versions"]:
            text = version["material"]
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            found += [text, base64.b64encode(raw).decode(), raw.hex()]
    return found


def warning_texts(result):
    """Warning messages of a result: plain strings before ansible-core 2.19, summaries since."""
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]
