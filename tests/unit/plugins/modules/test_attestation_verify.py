# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""attestation_verify end to end: main() with real arguments, on documents and on a simulated
fleet (one simulator process, real HTTP on loopback, real signatures)."""

from __future__ import annotations

import base64
import json
import sys
import time
from pathlib import Path

import pytest

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.module_base import strings_in
from ansible_collections.alfred.tee_kms.plugins.modules import attestation_verify

HERE = Path(__file__).resolve()
REPO = HERE.parents[4]
for extra in (REPO / "tests" / "unit" / "plugins" / "module_utils", REPO / "tools" / "enclave_sim"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from attest_testlib import AlfredWorld, JwtWorld  # noqa: E402
from module_testlib import patch_module_args  # noqa: E402

PCR0 = "e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94ae3949dd54e7c9fe86a"
CAPTURED = "2024-09-07T14:37:39.545Z"
ROW_KEYS = {"source", "verified", "measurement", "reason", "format", "digest", "check", "issued_at", "elapsed_ms"}


def run_module(args: dict, capsys) -> tuple:
    """Run main() as Ansible would; return (failed, result)."""
    with patch_module_args(args):
        with pytest.raises(SystemExit) as info:
            attestation_verify.main()
    result = json.loads(capsys.readouterr().out)
    assert info.value.code == (1 if result.get("failed") else 0)
    return bool(result.get("failed")), result


def assert_no_raw_evidence(result: dict, *raws: str):
    text = json.dumps(result)
    for raw in raws:
        for start in range(0, max(1, len(raw) - 40), 200):
            assert raw[start:start + 40] not in text
    for row in result.get("results", []):
        assert set(row) <= ROW_KEYS, row
    # No token, signature or base64 blob of any size: the longest legitimate value is a reason.
    for string in strings_in({k: v for k, v in result.items() if k not in ("msg", "invocation")}):
        assert not string.startswith("eyJ"), string[:20]
        assert len(string) < 400, string[:60]


@pytest.fixture(scope="module")
def production_b64(nitro_vectors):
    return (nitro_vectors / "nitro_attestation.b64").read_text().strip()


# --------------------------------------------------------------------------- documents

def test_nitro_document_verified_at_capture_time(production_b64, capsys):
    failed, result = run_module({"document": production_b64, "verification_time": CAPTURED,
                                 "allowed_measurements": [PCR0.upper()], "nonce": "01" * 1024}, capsys)
    assert not failed and result["changed"] is False
    [row] = result["results"]
    assert row["verified"] is True and row["format"] == "nitro" and row["source"] == "document"
    assert row["measurement"] == PCR0 and row["reason"] == "verified"
    assert row["digest"].startswith("sha256:")
    assert result["measurements"] == [PCR0]
    assert result["audit"] == {"kind": "attestation", "results": result["results"], "measurements": [PCR0], "purpose": "attestation-verify"}
    assert_no_raw_evidence(result, production_b64)
    assert production_b64[:60] not in json.dumps(result.get("invocation", {}))  # no_log on document


def test_nitro_document_path_expired_fails_naming_source_and_check(production_b64, capsys, tmp_path):
    path = tmp_path / "doc.b64"
    path.write_text(production_b64)
    failed, result = run_module({"document_path": str(path), "verification_time": "2024-09-07T18:37:39Z"}, capsys)
    assert failed
    assert result["msg"] == (f"Could not verify attestation evidence of 1 of 1 sources: {path} "
                             "(expired: leaf certificate expired at 2024-09-07T17:37:39Z)")
    assert result["results"][0]["check"] == "expired"
    assert result["audit"]["results"][0]["check"] == "expired"
    assert_no_raw_evidence(result, production_b64)


def test_fail_on_invalid_false_reports_instead(production_b64, capsys, tmp_path):
    raw = tmp_path / "doc.cbor"
    raw.write_bytes(base64.b64decode(production_b64))
    failed, result = run_module({"document_path": str(raw), "verification_time": CAPTURED, "nonce": "02",
                                 "fail_on_invalid": False}, capsys)
    assert not failed
    assert result["results"][0]["check"] == "nonce_mismatch"
    assert result["results"][0]["measurement"] == PCR0  # reported, but not among verified measurements
    assert result["measurements"] == []


def test_check_mode_runs_for_real(production_b64, capsys):
    failed, result = run_module({"document": production_b64, "verification_time": CAPTURED,
                                 "_ansible_check_mode": True}, capsys)
    assert not failed and result["changed"] is False and result["measurements"] == [PCR0]
    failed, result = run_module({"document": production_b64, "_ansible_check_mode": True}, capsys)
    assert failed and result["results"][0]["check"] == "expired"


def test_jwt_document_with_jwks_file(capsys, tmp_path):
    world = JwtWorld()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(world.jwks))
    claims = world.claims(int(time.time()), measurement="img-1", submods={"container": {"image_digest": "sha256:" + "a" * 64}})
    token = world.token("PS256", claims=claims)
    args = {"document": token, "jwks": str(jwks), "issuer": "https://attest.example", "audience": "alfred-tee-kms",
            "measurement_claim": "submods.container.image_digest", "nonce": "n0nce", "algorithms": ["PS256"]}
    failed, result = run_module(args, capsys)
    assert not failed and result["measurements"] == ["sha256:" + "a" * 64]
    assert_no_raw_evidence(result, token)
    failed, result = run_module(dict(args, audience="other"), capsys)
    assert failed and result["results"][0]["check"] == "claims"
    failed, result = run_module(dict(args, algorithms=["ES256"]), capsys)
    assert failed and result["results"][0]["check"] == "signature"
    failed, result = run_module(dict(args, jwks=world.jwks, document=token.rsplit(".", 1)[0] + ".AAAA"), capsys)
    assert failed and result["results"][0]["check"] == "signature"


def test_alfred_document(capsys):
    world = AlfredWorld()
    now = int(time.time())
    doc = json.dumps(world.evidence(world.challenge(now)))
    failed, result = run_module({"document": doc, "format": "alfred", "public_keys": [world.public_b64]}, capsys)
    assert not failed and result["measurements"] == ["cd" * 48]
    failed, result = run_module({"document": doc, "public_keys": [AlfredWorld().public_b64]}, capsys)
    assert failed and "(signature: Ed25519 signature does not verify" in result["msg"]
    failed, result = run_module({"document": "{not json", "public_keys": [world.public_b64]}, capsys)
    assert failed and result["results"][0]["check"] == "malformed"
    assert "Traceback" not in result["msg"]


@pytest.mark.parametrize("args, needle", [
    ({"document": "not-a-document", "endpoints": ["http://127.0.0.1:1"], "format": "nitro"}, "mutually exclusive"),
    ({"endpoints": ["http://127.0.0.1:1"]}, "format"),
    ({"endpoints": ["http://127.0.0.1:1"], "format": "nitro", "nonce": "ab"}, "mutually exclusive"),
    ({"endpoints": ["http://127.0.0.1:1"], "format": "nitro", "verification_time": CAPTURED}, "mutually exclusive"),
    ({}, "one of the following is required"),
    ({"document": "not-a-document", "root_certificate": "-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----"},
     "Could not load the nitro root certificate: it is not a PEM certificate"),
    ({"document": "not-a-document", "public_keys": ["c2hvcnQ="]}, "is not the base64 of a 32-byte Ed25519 public key"),
    ({"document": "not-a-document", "verification_time": "noon"}, "Could not parse verification_time 'noon': it is not ISO 8601"),
    ({"document_path": "/nonexistent/doc"}, "Could not read attestation document '/nonexistent/doc'"),
    ({"document": "not-a-document", "jwks": "{}", "jwks_url": "http://127.0.0.1:1/"}, "mutually exclusive"),
    ({"document": "not-a-document", "timeout": 0}, "timeout must be positive"),
    ({"document": "not-a-document", "nitro_pcrs": [40]}, "PCR indexes must be distinct integers 0..31"),
])
def test_configuration_errors(args, needle, capsys):
    failed, result = run_module(args, capsys)
    assert failed and needle in result["msg"], result["msg"]


def test_jwks_url_unreachable_is_a_configuration_error(capsys):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    failed, result = run_module({"document": "eyJ.e30.x", "jwks_url": f"http://127.0.0.1:{port}/jwks"}, capsys)
    assert failed and result["msg"].startswith(f"Could not fetch the JWKS from 127.0.0.1:{port}: refused")


# --------------------------------------------------------------------------- a simulated fleet

M_OK = "ab" * 48
M_OTHER = "cd" * 48
FLEET = [
    ("ok-1", M_OK, "ok"), ("down", M_OK, "down"), ("slow", M_OK, "slow"), ("ok-2", M_OK, "ok"),
    ("bad-signature", M_OK, "bad-signature"), ("stale", M_OK, "stale"), ("wrong-nonce", M_OK, "wrong-nonce"),
    ("debug", M_OK, "debug"), ("other-image", M_OTHER, "ok"),
]
EXPECTED = {  # format -> enclave -> check (None = verified)
    "alfred": {"stale": "stale"},
    "nitro": {"stale": "stale"},
    "jwt": {"stale": "expired"},  # a 2 h old token is past its 5 min lifetime
}
COMMON = {"ok-1": None, "down": "fetch", "slow": "fetch", "ok-2": None, "bad-signature": "signature",
          "wrong-nonce": "nonce_mismatch", "debug": "debug_enclave", "other-image": "measurement_not_allowed"}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    fleet_mod = pytest.importorskip("fleet", reason="the enclave simulator (tools/enclave_sim) is not available")
    enclaves = [{"name": n, "measurement": m, "mode": mode} for n, m, mode in FLEET]
    enclaves[2]["slow_seconds"] = 4
    with fleet_mod.SimulatorFleet(tmp_path_factory.mktemp("sim"), enclaves=enclaves) as running:
        yield running


def _fleet_args(fleet, fmt, **extra):
    trust = fleet.trust
    args = {"format": fmt, "endpoints": [fleet.urls[name] for name, _m, _mode in FLEET],
            "allowed_measurements": [M_OK], "timeout": 1, "max_age": 600, "fail_on_invalid": False}
    if fmt == "alfred":
        args["public_keys"] = trust["alfred_public_keys"]
    elif fmt == "nitro":
        args["root_certificate"] = trust["nitro_root_certificate"]
    else:
        args.update(jwks=trust["jwks"], issuer=trust["jwt_issuer"], audience=trust["jwt_audience"])
    args.update(extra)
    return args


@pytest.mark.parametrize("fmt", ["alfred", "nitro", "jwt"])
def test_fleet_every_row(fleet, fmt, capsys):
    started = time.monotonic()
    failed, result = run_module(_fleet_args(fleet, fmt), capsys)
    wall = time.monotonic() - started
    assert not failed
    rows = result["results"]
    assert [r["source"] for r in rows] == [fleet.urls[name] for name, _m, _mode in FLEET]  # input order
    expected = dict(COMMON, **EXPECTED[fmt])
    for (name, _m, _mode), row in zip(FLEET, rows):
        assert row.get("check") == expected[name], (name, row)
        assert row["verified"] is (expected[name] is None), (name, row)
        assert row["format"] == fmt
        if expected[name] == "fetch":
            assert row["digest"] is None and "127.0.0.1:" in row["reason"]
        else:
            assert row["digest"].startswith("sha256:")
    by_name = {name: row for (name, _m, _mode), row in zip(FLEET, rows)}
    assert "HTTP 503" in by_name["down"]["reason"]
    assert "within 1s (timeout)" in by_name["slow"]["reason"]
    assert by_name["other-image"]["measurement"] == M_OTHER
    assert result["measurements"] == [M_OK]
    # The slow enclave (answering after 4 s) costs its own worker the 1 s timeout while the others
    # answer in parallel. Timings are printed, not asserted (shared CI machines); the lower bound is safe.
    slow_ms = by_name["slow"]["elapsed_ms"]
    assert slow_ms >= 900
    print(f"\n{fmt}: wall {wall:.2f}s, slow enclave {slow_ms} ms, fastest others "
          f"{sorted(r['elapsed_ms'] for n, r in by_name.items() if n != 'slow')[:3]} ms")
    assert_no_raw_evidence(result)


def test_fleet_failure_message_names_every_failed_source(fleet, capsys):
    failed, result = run_module(_fleet_args(fleet, "alfred", fail_on_invalid=True), capsys)
    assert failed
    assert result["msg"].startswith("Could not verify attestation evidence of 7 of 9 sources: ")
    for name, check in COMMON.items():
        if check is not None:
            assert f"{fleet.urls[name]} ({check}: " in result["msg"], name
    assert f"{fleet.urls['stale']} (stale: " in result["msg"]
    assert fleet.urls["ok-1"] + " (" not in result["msg"]
    assert result["audit"]["kind"] == "attestation" and len(result["audit"]["results"]) == 9


def test_fleet_jwks_url_and_healthy_subset(fleet, capsys):
    healthy = [fleet.urls["ok-1"], fleet.urls["ok-2"]]
    args = _fleet_args(fleet, "jwt", endpoints=healthy, jwks_url=fleet.trust["jwks_url"], fail_on_invalid=True,
                       _ansible_check_mode=True)
    del args["jwks"]
    failed, result = run_module(args, capsys)
    assert not failed and [r["verified"] for r in result["results"]] == [True, True]
    assert result["measurements"] == [M_OK]


def test_fleet_reconfigured_enclave(fleet, capsys):
    args = _fleet_args(fleet, "nitro", endpoints=[fleet.urls["ok-2"]], fail_on_invalid=True)
    assert run_module(args, capsys)[0] is False
    fleet.configure("ok-2", mode="bad-signature")
    try:
        failed, result = run_module(args, capsys)
        assert failed and result["results"][0]["check"] == "signature"
    finally:
        fleet.configure("ok-2", mode="ok")


def test_fleet_trust_of_another_world_refused(fleet, capsys):
    other = JwtWorld()
    args = _fleet_args(fleet, "jwt", endpoints=[fleet.urls["ok-1"]], jwks=other.jwks)
    assert run_module(args, capsys)[1]["results"][0]["check"] == "signature"
    args = _fleet_args(fleet, "nitro", endpoints=[fleet.urls["ok-1"]])
    del args["root_certificate"]  # the pinned AWS root does not vouch for the simulator's chain
    assert run_module(args, capsys)[1]["results"][0]["check"] == "chain"


# --------------------------------------------------------------------------- through Ansible itself

def test_module_runs_through_ansiballz(production_b64, tmp_path):
    """ansible-playbook packs the module with AnsiballZ, which only ships module_utils it sees
    imported: every verifier must reach the remote side (here: localhost)."""
    import os
    import subprocess

    playbook_bin = Path(sys.executable).with_name("ansible-playbook")
    if not playbook_bin.exists():
        pytest.skip("ansible-playbook is not installed next to this Python")
    jwt_world, alfred_world = JwtWorld(), AlfredWorld()
    now = int(time.time())
    (tmp_path / "nitro.b64").write_text(production_b64)
    (tmp_path / "token.jwt").write_text(jwt_world.token("EdDSA", now=now))
    (tmp_path / "alfred.json").write_text(json.dumps(alfred_world.evidence(alfred_world.challenge(now))))
    (tmp_path / "jwks.json").write_text(json.dumps(jwt_world.jwks))
    tasks = [
        {"name": "nitro", "alfred.tee_kms.attestation_verify": {
            "document_path": str(tmp_path / "nitro.b64"), "verification_time": CAPTURED}, "register": "nitro"},
        {"name": "jwt", "alfred.tee_kms.attestation_verify": {
            "document_path": str(tmp_path / "token.jwt"), "jwks": str(tmp_path / "jwks.json")}, "register": "jwt"},
        {"name": "alfred", "alfred.tee_kms.attestation_verify": {
            "document_path": str(tmp_path / "alfred.json"), "public_keys": [alfred_world.public_b64]}, "register": "alfred"},
        {"name": "expired nitro is reported, not raised", "alfred.tee_kms.attestation_verify": {
            "document_path": str(tmp_path / "nitro.b64"), "fail_on_invalid": False}, "register": "late"},
        {"ansible.builtin.assert": {"that": [
            f"nitro.measurements == ['{PCR0}']",
            "jwt.measurements == ['" + "ab" * 48 + "']",
            "alfred.measurements == ['" + "cd" * 48 + "']",
            "late.results[0].check == 'expired'",
            "nitro.audit.kind == 'attestation'",
        ]}},
    ]
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"), ANSIBLE_PYTHON_INTERPRETER=sys.executable,
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(playbook_bin), "-i", "localhost,", "-c", "local", str(playbook)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "ok=5" in proc.stdout


def test_trust_as_one_option_matches_the_deprecated_flat_options(capsys):
    world = AlfredWorld()
    doc = json.dumps(world.evidence(world.challenge(int(time.time()))))
    failed, flat = run_module({"document": doc, "format": "alfred", "public_keys": [world.public_b64]}, capsys)
    assert not failed
    failed, whole = run_module({"document": doc, "format": "alfred", "trust": {"public_keys": [world.public_b64]}}, capsys)
    assert not failed and whole["measurements"] == flat["measurements"] == ["cd" * 48]
    failed, result = run_module({"document": doc, "trust": {"public_keys": [world.public_b64]}, "public_keys": [world.public_b64]}, capsys)
    assert failed and "mutually exclusive" in result["msg"]
    failed, result = run_module({"document": doc, "trust": {"public_keys": ["c2hvcnQ="]}}, capsys)
    assert failed and "is not the base64 of a 32-byte Ed25519 public key" in result["msg"]
    failed, result = run_module({"document": doc, "trust": {"jwks": "{}", "jwks_url": "http://127.0.0.1:1/"}}, capsys)
    assert failed and "jwks and jwks_url are mutually exclusive" in result["msg"]
    # trust.max_age applies when the max_age option is not set
    old = json.dumps(world.evidence(world.challenge(int(time.time()) - 100), evidence_issued_at=int(time.time()) - 100))
    failed, result = run_module({"document": old, "trust": {"public_keys": [world.public_b64], "max_age": 10}}, capsys)
    assert failed and result["results"][0]["check"] in ("stale", "expired"), result["results"][0]


def test_control_sequences_an_enclave_sends_are_escaped_in_the_module_result(capsys):
    # Issue 22 item 8: ansible-core prints msg raw and the result as JSON that keeps C1 controls and DEL.
    world = AlfredWorld()
    now = int(time.time())
    hostile = "\x1b]0;owned\x07\x9b2J\x7f\u202e" + "ab" * 40
    doc = json.dumps(world.evidence(world.challenge(now), measurement=hostile))
    failed, result = run_module({"document": doc, "public_keys": [AlfredWorld().public_b64]}, capsys)
    assert failed and result["results"][0]["check"] == "signature"
    assert result["results"][0]["measurement"] == "\\x1b]0;owned\\x07\\x9b2J\\x7f\\u202e" + "ab" * 40
    raw = [s for s in strings_in(result) if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c == "\u202e" for c in s)]
    assert raw == []
