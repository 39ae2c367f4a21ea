# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for the module_utils tests (helpers live in kms_testlib.py)."""

from __future__ import annotations

import pytest
from kms_testlib import Signer


@pytest.fixture
def signer():
    return Signer()


@pytest.fixture
def store_path(tmp_path, monkeypatch):
    monkeypatch.delenv("ALFRED_TEE_KMS_STORE", raising=False)
    return str(tmp_path / "kms" / "store.json")
