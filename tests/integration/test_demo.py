# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`make demo` (tools/demo/run_demo.py) run from a shell still set up for a real rotation: the
README's "Rotating for real" variables exported, pointing at another store, a real stage hook and
cloud credentials. The demo must rotate only its own key in its own store.

Run: .venv/bin/python -m pytest tests/integration/test_demo.py
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local import LocalKmsProvider

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "tools" / "demo" / "run_demo.py"
REAL_KEY = "tokens/refresh"
REAL_IMAGE = "d4" * 48


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_demo_ignores_real_key_env(tmp_path):
    real_dir = tmp_path / "real"
    real_dir.mkdir(mode=0o700)
    real_store = real_dir / "store.json"
    real_trust = {"public_keys": [base64.b64encode(Ed25519PrivateKey.generate().public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)).decode()]}
    LocalKmsProvider(str(real_store)).create_key(REAL_KEY, [REAL_IMAGE], "sha384", real_trust)
    before = real_store.read_bytes()
    hook_ran = tmp_path / "real-stage-hook-ran"
    env = dict(os.environ,
               # The README's "Rotating for real", still exported, and what goes with it.
               KMS_KEY_ID=REAL_KEY, KMS_KEY_VERSION="1", NEXT_KMS_KEY_VERSION="2",
               KMS_ALLOWED_MEASUREMENTS=f"{REAL_IMAGE},{'e5' * 48}",
               ALFRED_TEE_KMS_STORE=str(real_store), ALFRED_ENV="production",
               ALFRED_ROTATION_STAGE_CMD=f"touch {hook_ran}",
               AWS_ACCESS_KEY_ID="AKIAREALCREDENTIAL01", AWS_SECRET_ACCESS_KEY="real-secret", AWS_REGION="eu-west-1")
    done = subprocess.run([sys.executable, str(DEMO), "--port", str(free_port()), "--evidence-dir", str(tmp_path / "evidence")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
    output = done.stdout + done.stderr
    assert real_store.read_bytes() == before, output
    assert not hook_ran.exists(), "the caller's real stage hook ran"
    assert done.returncode == 0, output
    assert f"key store {REPO / 'artifacts' / 'demo' / 'kms-store.json'}" in done.stdout
    assert REAL_KEY + ":" not in done.stdout and str(real_store) not in output
