# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures every suite shares."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# CI lays shared/ beside the clone; developers have it beside their checkout.
NITRO_VECTORS = Path(__file__).resolve().parents[2] / "shared" / "testvectors" / "nitro"
NITRO_VECTOR_FILES = ("AWS_NitroEnclaves_Root-G1.pem", "nitro_attestation.b64", "nitro_attestation_debug.b64")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def nitro_vectors() -> Path:
    """The folder of genuine AWS Nitro vectors. Missing outside CI: skip, naming the path.
    Missing in CI (CI=true): fail, since CI always has shared/ beside the clone and a skip there
    would hide the only tests against documents AWS itself signed."""
    missing = [name for name in NITRO_VECTOR_FILES if not (NITRO_VECTORS / name).is_file()]
    if missing:
        message = (f"genuine AWS Nitro test vectors {', '.join(missing)} not found in {NITRO_VECTORS} "
                   "(expected ../shared/testvectors/nitro beside the repository root)")
        if in_ci():
            pytest.fail(message + "; CI=true, so this is a failure, not a skip", pytrace=False)
        pytest.skip(message)
    return NITRO_VECTORS
