# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""evidence_verify module: run main() with real bundles, read its JSON result."""

from __future__ import annotations

import json
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import format as ev
from ansible_collections.alfred.tee_kms.plugins.modules import evidence_verify
from ansible_collections.alfred.tee_kms.plugins.plugin_utils import _evidence_bundle as ev_bundle
from module_testlib import patch_module_args


def run_module(capsys, args):
    with patch_module_args(args), pytest.raises(SystemExit) as exc:
        evidence_verify.main()
    return exc.value.code, json.loads(capsys.readouterr().out)


def build(tmp_path, key=None):
    bundle = str(tmp_path / "b")
    os.mkdir(bundle)
    chain = ev_bundle.ChainWriter(os.path.join(bundle, ev.EVENTS))
    for i in range(8):
        chain.append("task_result", {"i": i})
    chain.append("end", {"outcome": "success"})
    chain.close()
    open(os.path.join(bundle, ev.RUN_LOG), "w").write("[2026-02-16T00:00:00.000Z] INFO x\n")
    ev_bundle.write_json(os.path.join(bundle, ev.SUMMARY), {"chain_head": {"seq": chain.seq, "hash": chain.head}})
    ev_bundle.write_manifest(bundle)
    if key:
        ev_bundle.sign_manifest(bundle, key)
    return bundle


def test_verified_bundle(tmp_path, capsys):
    key = ed25519.Ed25519PrivateKey.generate()
    bundle = build(tmp_path, key)
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    rc, out = run_module(capsys, {"path": bundle, "public_key": pub, "_ansible_check_mode": True})
    assert rc == 0 and out["verified"] is True and out["changed"] is False
    assert out["events"] == 9 and out["chain_head"]["seq"] == 8 and out["signature_verified"] is True
    assert out["audit"]["kind"] == "evidence_verify" and out["reason"] is None


def test_tampered_bundle_fails_with_reason(tmp_path, capsys):
    bundle = build(tmp_path)
    path = os.path.join(bundle, ev.EVENTS)
    content = open(path).read().replace('"i":3', '"i":4')
    open(path, "w").write(content)
    rc, out = run_module(capsys, {"path": bundle})
    assert rc == 1 and out["failed"] is True and out["verified"] is False
    assert out["msg"] == f"Could not verify evidence bundle '{bundle}': events.jsonl line 4: hash does not match its content"


def test_fail_on_invalid_false_returns_result(tmp_path, capsys):
    bundle = build(tmp_path)
    os.remove(os.path.join(bundle, ev.RUN_LOG))
    rc, out = run_module(capsys, {"path": bundle, "fail_on_invalid": False})
    assert rc == 0 and out["verified"] is False
    assert out["reason"].startswith("run.log: listed in MANIFEST.sha256 line 2 but missing")


def test_missing_signature_with_key_and_bad_key_text(tmp_path, capsys):
    bundle = build(tmp_path)
    key = ed25519.Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    import base64
    rc, out = run_module(capsys, {"path": bundle, "public_key": base64.b64encode(raw).decode()})
    assert rc == 1 and "MANIFEST.sig: missing, but a public key was given" in out["msg"]
    rc, out = run_module(capsys, {"path": bundle, "public_key": "not-a-key!"})
    assert rc == 1 and "Could not load the given public key: neither PEM nor base64" in out["msg"]
