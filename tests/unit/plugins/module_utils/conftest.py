# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for the module_utils tests (helpers live in kms_testlib.py and attest_testlib.py).

The tests sit in one folder per package (``_kms/``, ``_attestation/``, ...) and import the
helper libraries of this folder by plain name: put this folder on ``sys.path`` explicitly
instead of relying on pytest's rootdir insertion for conftest files.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from kms_testlib import Signer  # noqa: E402


@pytest.fixture
def signer():
    return Signer()


@pytest.fixture
def store_path(tmp_path, monkeypatch):
    monkeypatch.delenv("ALFRED_TEE_KMS_STORE", raising=False)
    return str(tmp_path / "kms" / "store.json")
