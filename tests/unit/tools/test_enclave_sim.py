"""Enclave simulator: real processes on loopback, evidence checked with cryptography directly."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cbor2
import pytest
import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store, VerificationError

from fleet import SIM_SCRIPT, SimulatorError, SimulatorFleet

M_HEX = "a1" * 48
M_OTHER = "b2" * 48
M_OPAQUE = "sim-opaque-measurement"
SLOW = 0.6
FLEET_CLI = SIM_SCRIPT.parent / "fleet.py"


# -- verifiers written against the specs, independent of the simulator's code -------------------

def alfred_signature_ok(evidence: dict, public_keys_b64: list[str]) -> bool:
    message = "|".join(str(evidence[k]) for k in (
        "runtime", "measurement", "challenge_nonce", "issued_at", "expires_at",
        "operation_purpose", "request_id", "evidence_issued_at")).encode("utf-8")
    signature = base64.b64decode(evidence["signature"])
    for key_b64 in public_keys_b64:
        key = ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(key_b64))
        try:
            key.verify(signature, message)
            return True
        except InvalidSignature:
            continue
    return False


def parse_nitro(document: bytes) -> tuple[list, dict]:
    cose = cbor2.loads(document)
    assert isinstance(cose, list) and len(cose) == 4, "untagged COSE_Sign1 is a 4-element array"
    protected, unprotected, payload, signature = cose
    assert cbor2.loads(protected) == {1: -35}
    assert unprotected == {}
    assert len(signature) == 96
    return cose, cbor2.loads(payload)


def nitro_signature_ok(document: bytes) -> bool:
    (protected, dummy, payload, signature), claims = parse_nitro(document)
    leaf = x509.load_der_x509_certificate(claims["certificate"])
    sig_structure = cbor2.dumps(["Signature1", protected, b"", payload])
    der = encode_dss_signature(int.from_bytes(signature[:48], "big"), int.from_bytes(signature[48:], "big"))
    try:
        leaf.public_key().verify(der, sig_structure, ec.ECDSA(hashes.SHA384()))
        return True
    except InvalidSignature:
        return False


def verify_nitro_chain(claims: dict, root_pem: str | bytes, at: dt.datetime | None = None) -> None:
    """Leaf -> cabundle intermediates -> pinned root, at the document's own time by default."""
    root = x509.load_pem_x509_certificate(root_pem if isinstance(root_pem, bytes) else root_pem.encode())
    leaf = x509.load_der_x509_certificate(claims["certificate"])
    intermediates = [x509.load_der_x509_certificate(c) for c in claims["cabundle"][1:]]
    when = at or dt.datetime.fromtimestamp(claims["timestamp"] / 1000, dt.timezone.utc)
    verifier = (
        PolicyBuilder().store(Store([root])).time(when)
        # Nitro leaves carry no SAN/EKU, so the end-entity policy is relaxed; CA rules stay strict.
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ExtensionPolicy.permit_all())
        .build_client_verifier()
    )
    verifier.verify(leaf, intermediates)


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_jwt(token: str, jwks: dict) -> tuple[dict, dict]:
    """Return (header, claims) when the JWS verifies against the JWKS; raise otherwise."""
    header_b64, claims_b64, sig_b64 = token.split(".")
    assert "=" not in token, "RFC 7515 base64url has no padding"
    header = json.loads(_b64url_decode(header_b64))
    jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    signing_input = f"{header_b64}.{claims_b64}".encode("ascii")
    signature = _b64url_decode(sig_b64)
    if header["alg"] == "RS256":
        assert jwk["kty"] == "RSA"
        key = rsa.RSAPublicNumbers(int.from_bytes(_b64url_decode(jwk["e"]), "big"),
                                   int.from_bytes(_b64url_decode(jwk["n"]), "big")).public_key()
        key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif header["alg"] == "ES256":
        assert jwk["kty"] == "EC" and jwk["crv"] == "P-256" and len(signature) == 64
        key = ec.EllipticCurvePublicNumbers(int.from_bytes(_b64url_decode(jwk["x"]), "big"),
                                            int.from_bytes(_b64url_decode(jwk["y"]), "big"),
                                            ec.SECP256R1()).public_key()
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    else:
        raise AssertionError(f"unexpected alg {header['alg']}")
    return header, json.loads(_b64url_decode(claims_b64))


def jwt_signature_ok(token: str, jwks: dict) -> bool:
    try:
        verify_jwt(token, jwks)
        return True
    except InvalidSignature:
        return False


# -- helpers -----------------------------------------------------------------------------------

def challenge_body(nonce: str | None = None, lifetime: int = 120) -> dict:
    now = int(time.time())
    return {"challenge_nonce": nonce or secrets.token_hex(32), "issued_at": now,
            "expires_at": now + lifetime, "operation_purpose": "kms-rotation-preflight",
            "request_id": "req-" + secrets.token_hex(6)}


def attest(url: str, body: dict | None = None) -> tuple[dict, dict]:
    body = body or challenge_body()
    response = requests.post(url + "/v1/attestation/challenge", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return body, response.json()


def document(url: str, fmt: str, nonce: str | None = None, **extra) -> requests.Response:
    params = {"format": fmt, **extra}
    if nonce is not None:
        params["nonce"] = nonce
    return requests.get(url + "/v1/attestation/document", params=params, timeout=10)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    enclaves = [
        {"name": "ok", "measurement": M_HEX, "mode": "ok"},
        {"name": "opaque", "measurement": M_OPAQUE},
        {"name": "down", "measurement": M_HEX, "mode": "down"},
        {"name": "slow", "measurement": M_HEX, "mode": "slow", "slow_seconds": SLOW},
        {"name": "bad", "measurement": M_HEX, "mode": "bad-signature"},
        {"name": "stale", "measurement": M_HEX, "mode": "stale"},
        {"name": "wrongnonce", "measurement": M_HEX, "mode": "wrong-nonce"},
        {"name": "debug", "measurement": M_HEX, "mode": "debug"},
        {"name": "switch", "measurement": M_HEX, "mode": "ok"},
    ]
    with SimulatorFleet(tmp_path_factory.mktemp("sim"), enclaves=enclaves) as running:
        yield running


# -- state files ---------------------------------------------------------------------------------

def test_state_files_published(fleet):
    state = fleet.state_dir
    ready = json.loads((state / "ready.json").read_text())
    assert ready["pid"] == fleet.process.pid
    assert ready["base_url"] == f"http://127.0.0.1:{ready['port']}"
    assert ready["enclaves"]["ok"] == {**ready["enclaves"]["ok"], "url": ready["base_url"] + "/enclaves/ok",
                                       "measurement": M_HEX, "mode": "ok"}
    assert ready["enclaves"]["opaque"]["mode"] == "ok"
    trust = fleet.trust
    assert set(trust) >= {"alfred_public_keys", "nitro_root_certificate", "jwks", "jwt_issuer", "jwt_audience"}
    assert len(base64.b64decode(trust["alfred_public_keys"][0])) == 32
    assert (state / "nitro_root.pem").read_text() == trust["nitro_root_certificate"]
    assert json.loads((state / "jwks.json").read_text()) == trust["jwks"]
    root = x509.load_pem_x509_certificate(trust["nitro_root_certificate"].encode())
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey) and root.public_key().curve.name == "secp384r1"
    assert {k["alg"] for k in trust["jwks"]["keys"]} == {"RS256", "ES256"}
    assert all("d" not in k for k in trust["jwks"]["keys"]), "JWKS must hold public keys only"


def test_no_private_key_material_written(fleet):
    for path in fleet.state_dir.iterdir():
        text = path.read_text(errors="replace")
        assert "PRIVATE KEY" not in text, path.name


def test_jwks_served_over_http(fleet):
    response = requests.get(fleet.base_url + "/.well-known/jwks.json", timeout=5)
    assert response.status_code == 200 and response.json() == fleet.trust["jwks"]


# -- health --------------------------------------------------------------------------------------

def test_health_codes(fleet):
    ok = requests.get(fleet.urls["ok"] + "/healthz", timeout=5)
    assert (ok.status_code, ok.json()) == (200, {"status": "ok"})
    down = requests.get(fleet.urls["down"] + "/healthz", timeout=5)
    assert (down.status_code, down.json()) == (503, {"status": "down"})
    started = time.monotonic()
    slow = requests.get(fleet.urls["slow"] + "/healthz", timeout=10)
    assert slow.status_code == 200 and time.monotonic() - started >= SLOW


# -- alfred --------------------------------------------------------------------------------------

def test_alfred_challenge_verifies(fleet):
    body, evidence = attest(fleet.urls["ok"])
    for key in body:
        assert evidence[key] == body[key]
    assert evidence["runtime"] == "alfred-enclave-runtime/sim"
    assert evidence["measurement"] == M_HEX
    assert abs(evidence["evidence_issued_at"] - time.time()) < 5
    assert isinstance(evidence["evidence_issued_at"], int)
    assert alfred_signature_ok(evidence, fleet.trust["alfred_public_keys"])
    tampered = dict(evidence, measurement=M_OTHER)
    assert not alfred_signature_ok(tampered, fleet.trust["alfred_public_keys"])


def test_alfred_document_format(fleet):
    nonce = secrets.token_hex(16)
    response = document(fleet.urls["ok"], "alfred", nonce)
    assert response.status_code == 200
    evidence = response.json()
    assert evidence["challenge_nonce"] == nonce
    assert evidence["operation_purpose"] == "attestation-document"
    assert evidence["expires_at"] > evidence["issued_at"]
    assert alfred_signature_ok(evidence, fleet.trust["alfred_public_keys"])


@pytest.mark.parametrize("mutate, needle", [
    (lambda b: b.pop("request_id"), "request_id"),
    (lambda b: b.update(issued_at="now"), "issued_at"),
    (lambda b: b.update(expires_at=True), "expires_at"),
    (lambda b: b.update(challenge_nonce="a|b"), "challenge_nonce"),
    (lambda b: b.update(operation_purpose=""), "operation_purpose"),
    (lambda b: b.update(expires_at=b["issued_at"]), "later than"),
    (lambda b: b.update(issued_at=1000, expires_at=2000), "expired"),
])
def test_malformed_challenge_is_400(fleet, mutate, needle):
    body = challenge_body()
    mutate(body)
    response = requests.post(fleet.urls["ok"] + "/v1/attestation/challenge", json=body, timeout=5)
    assert response.status_code == 400
    assert needle in response.json()["error"]


def test_non_json_challenge_is_400(fleet):
    response = requests.post(fleet.urls["ok"] + "/v1/attestation/challenge", data=b"{nope",
                             headers={"Content-Type": "application/json"}, timeout=5)
    assert response.status_code == 400 and "JSON" in response.json()["error"]
    response = requests.post(fleet.urls["ok"] + "/v1/attestation/challenge", json=["x"], timeout=5)
    assert response.status_code == 400 and "object" in response.json()["error"]


# -- nitro ---------------------------------------------------------------------------------------

def test_nitro_document_verifies_and_chains(fleet):
    nonce = secrets.token_hex(32)
    response = document(fleet.urls["ok"], "nitro", nonce)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/cbor"
    dummy, claims = parse_nitro(response.content)
    assert nitro_signature_ok(response.content)
    verify_nitro_chain(claims, fleet.trust["nitro_root_certificate"])
    verify_nitro_chain(claims, fleet.trust["nitro_root_certificate"], at=dt.datetime.now(dt.timezone.utc))
    assert claims["digest"] == "SHA384" and isinstance(claims["module_id"], str)
    assert abs(claims["timestamp"] / 1000 - time.time()) < 5
    assert claims["nonce"] == bytes.fromhex(nonce)
    assert claims["user_data"] is None
    # As KMS needs for a Recipient: an RSA key, a fresh one for every document.
    public_key = serialization.load_der_public_key(claims["public_key"])
    assert isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size >= 2048
    assert parse_nitro(document(fleet.urls["ok"], "nitro", nonce).content)[1]["public_key"] != claims["public_key"]
    assert sorted(claims["pcrs"]) == list(range(16))
    assert claims["pcrs"][0] == bytes.fromhex(M_HEX)
    assert all(len(v) == 48 and any(v) for v in claims["pcrs"].values())
    root = x509.load_pem_x509_certificate(fleet.trust["nitro_root_certificate"].encode())
    assert x509.load_der_x509_certificate(claims["cabundle"][0]) == root, "AWS order: root first"
    leaf = x509.load_der_x509_certificate(claims["certificate"])
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= dt.timedelta(hours=3)
    # Four hours later the short-lived leaf has expired, as with genuine AWS documents.
    with pytest.raises(VerificationError):
        verify_nitro_chain(claims, fleet.trust["nitro_root_certificate"],
                           at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=4))


def test_nitro_rejects_foreign_root(fleet, tmp_path):
    dummy, claims = parse_nitro(document(fleet.urls["ok"], "nitro").content)
    with SimulatorFleet(tmp_path, measurement=M_HEX) as other:
        with pytest.raises(VerificationError):
            verify_nitro_chain(claims, other.trust["nitro_root_certificate"])


def test_nitro_without_nonce_and_opaque_measurement(fleet):
    response = document(fleet.urls["opaque"], "nitro")
    dummy, claims = parse_nitro(response.content)
    assert claims["nonce"] is None
    assert claims["pcrs"][0] == hashlib.sha384(M_OPAQUE.encode()).digest()
    assert fleet.ready["enclaves"]["opaque"]["pcr0"] == claims["pcrs"][0].hex()
    assert nitro_signature_ok(response.content)


def test_genuine_aws_document_passes_the_same_checks(nitro_vectors):
    """The test verifier accepts real AWS documents, so passing it means 'shaped like AWS'."""
    raw = base64.b64decode((nitro_vectors / "nitro_attestation.b64").read_text())
    dummy, claims = parse_nitro(raw)
    assert nitro_signature_ok(raw)
    verify_nitro_chain(claims, (nitro_vectors / "AWS_NitroEnclaves_Root-G1.pem").read_bytes())
    assert claims["pcrs"][0].hex().startswith("e72a46ca80a260fb")


# -- jwt -----------------------------------------------------------------------------------------

def test_jwt_verifies_with_jwks(fleet):
    nonce = secrets.token_hex(16)
    seen_algs = set()
    for alg in ("RS256", "ES256", None, None):
        response = document(fleet.urls["ok"], "jwt", nonce, **({"alg": alg} if alg else {}))
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/jwt"
        header, claims = verify_jwt(response.text, fleet.trust["jwks"])
        if alg:
            assert header["alg"] == alg
        seen_algs.add(header["alg"])
        assert claims["iss"] == fleet.trust["jwt_issuer"]
        assert claims["aud"] == fleet.trust["jwt_audience"]
        assert claims["eat_nonce"] == nonce
        assert claims["measurement"] == claims["x-ms-sevsnpvm-launchmeasurement"] == M_HEX
        assert claims["nbf"] <= time.time() < claims["exp"] == claims["iat"] + 300
    assert seen_algs == {"RS256", "ES256"}


def test_jwt_unknown_alg_is_400(fleet):
    response = document(fleet.urls["ok"], "jwt", alg="HS256")
    assert response.status_code == 400 and "HS256" in response.json()["error"]


# -- modes ---------------------------------------------------------------------------------------

def test_bad_signature_mode(fleet):
    url = fleet.urls["bad"]
    dummy, evidence = attest(url)
    assert evidence["measurement"] == M_HEX
    assert not alfred_signature_ok(evidence, fleet.trust["alfred_public_keys"])
    raw = document(url, "nitro", secrets.token_hex(8)).content
    dummy, claims = parse_nitro(raw)
    assert not nitro_signature_ok(raw)
    verify_nitro_chain(claims, fleet.trust["nitro_root_certificate"])  # the chain itself is fine
    for alg in ("RS256", "ES256"):
        assert not jwt_signature_ok(document(url, "jwt", alg=alg).text, fleet.trust["jwks"])


def test_stale_mode(fleet):
    url = fleet.urls["stale"]
    dummy, evidence = attest(url)
    assert alfred_signature_ok(evidence, fleet.trust["alfred_public_keys"])
    assert 7190 <= time.time() - evidence["evidence_issued_at"] <= 7210
    raw = document(url, "nitro").content
    dummy, claims = parse_nitro(raw)
    assert nitro_signature_ok(raw)
    assert 7190 <= time.time() - claims["timestamp"] / 1000 <= 7210
    verify_nitro_chain(claims, fleet.trust["nitro_root_certificate"])  # chains at its own time
    dummy, jwt_claims = verify_jwt(document(url, "jwt").text, fleet.trust["jwks"])
    assert jwt_claims["exp"] < time.time() and 7190 <= time.time() - jwt_claims["iat"] <= 7210


def test_wrong_nonce_mode(fleet):
    url = fleet.urls["wrongnonce"]
    body, evidence = attest(url)
    assert evidence["challenge_nonce"] != body["challenge_nonce"]
    assert alfred_signature_ok(evidence, fleet.trust["alfred_public_keys"])  # signed, just wrong
    nonce = secrets.token_hex(16)
    raw = document(url, "nitro", nonce).content
    dummy, claims = parse_nitro(raw)
    assert claims["nonce"] != bytes.fromhex(nonce) and nitro_signature_ok(raw)
    dummy, jwt_claims = verify_jwt(document(url, "jwt", nonce).text, fleet.trust["jwks"])
    assert jwt_claims["eat_nonce"] != nonce


def test_debug_mode(fleet):
    url = fleet.urls["debug"]
    dummy, evidence = attest(url)
    assert evidence["measurement"] == "0" * 96
    assert alfred_signature_ok(evidence, fleet.trust["alfred_public_keys"])
    raw = document(url, "nitro").content
    dummy, claims = parse_nitro(raw)
    assert all(v == bytes(48) for v in claims["pcrs"].values()) and len(claims["pcrs"]) == 16
    assert nitro_signature_ok(raw)
    dummy, jwt_claims = verify_jwt(document(url, "jwt").text, fleet.trust["jwks"])
    assert jwt_claims["measurement"] == "0" * 96


def test_down_mode_refuses_attestation(fleet):
    url = fleet.urls["down"]
    response = requests.post(url + "/v1/attestation/challenge", json=challenge_body(), timeout=5)
    assert response.status_code == 503 and "down" in response.json()["error"]
    assert document(url, "nitro").status_code == 503


def test_slow_mode_delays_attestation(fleet):
    started = time.monotonic()
    dummy, evidence = attest(fleet.urls["slow"])
    assert time.monotonic() - started >= SLOW
    assert alfred_signature_ok(evidence, fleet.trust["alfred_public_keys"])


def test_sim_config_switches_mode_mid_run(fleet):
    url = fleet.urls["switch"]
    dummy, evidence = attest(url)
    assert alfred_signature_ok(evidence, fleet.trust["alfred_public_keys"])
    try:
        assert fleet.configure("switch", mode="bad-signature")["mode"] == "bad-signature"
        dummy, evidence = attest(url)
        assert not alfred_signature_ok(evidence, fleet.trust["alfred_public_keys"])
        fleet.configure("switch", mode="down")
        assert requests.get(url + "/healthz", timeout=5).status_code == 503
        current = fleet.configure("switch", mode="ok", measurement=M_OTHER)
        assert (current["mode"], current["measurement"], current["pcr0"]) == ("ok", M_OTHER, M_OTHER)
        assert requests.get(url + "/_sim/config", timeout=5).json()["measurement"] == M_OTHER
        dummy, evidence = attest(url)
        assert evidence["measurement"] == M_OTHER
        dummy, claims = parse_nitro(document(url, "nitro").content)
        assert claims["pcrs"][0] == bytes.fromhex(M_OTHER)
    finally:
        fleet.configure("switch", mode="ok", measurement=M_HEX)
    # Other enclaves are untouched by one enclave's reconfiguration.
    assert requests.get(fleet.urls["ok"] + "/_sim/config", timeout=5).json()["mode"] == "ok"


@pytest.mark.parametrize("cfg, needle", [
    ({"mode": "sideways"}, "mode"),
    ({"colour": "red"}, "unknown config keys"),
    ({"measurement": ""}, "measurement"),
    ({"slow_seconds": -1}, "slow_seconds"),
])
def test_sim_config_rejects_bad_values(fleet, cfg, needle):
    with pytest.raises(SimulatorError, match=needle):
        fleet.configure("switch", **cfg)
    assert requests.get(fleet.urls["switch"] + "/_sim/config", timeout=5).json()["mode"] == "ok"


# -- routing -------------------------------------------------------------------------------------

def test_routing_errors(fleet):
    assert requests.get(fleet.base_url + "/enclaves/nope/healthz", timeout=5).status_code == 404
    assert requests.get(fleet.base_url + "/healthz", timeout=5).status_code == 404  # fleet form: no root alias
    assert requests.get(fleet.urls["ok"] + "/v1/nothing", timeout=5).status_code == 404
    wrong_method = requests.get(fleet.urls["ok"] + "/v1/attestation/challenge", timeout=5)
    assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "POST"
    assert document(fleet.urls["ok"], "sgx").status_code == 400
    assert document(fleet.urls["ok"], "nitro", "xyz").status_code == 400
    assert document(fleet.urls["ok"], "nitro", "ab" * 1025).status_code == 400


def test_keep_alive_survives_error_answers(fleet):
    """Pooled clients (requests.Session) reuse one connection across enclaves and errors."""
    with requests.Session() as session:
        for url, expected in ((fleet.urls["down"], 503), (fleet.urls["ok"], 200),
                              (fleet.base_url + "/enclaves/nope", 404), (fleet.urls["ok"], 200),
                              (fleet.urls["ok"] + "/v1", 404), (fleet.urls["ok"], 200)):
            response = session.post(url + "/v1/attestation/challenge", json=challenge_body(), timeout=5)
            assert response.status_code == expected, (url, response.text)
        wrong = session.put(fleet.urls["ok"] + "/healthz", json={"x": 1}, timeout=5)
        assert wrong.status_code == 405
        assert session.get(fleet.urls["ok"] + "/healthz", timeout=5).status_code == 200


def test_single_enclave_form_serves_root_and_stops_cleanly(tmp_path):
    sim = SimulatorFleet(tmp_path, measurement=M_OPAQUE, mode="wrong-nonce", runtime="custom-runtime/1")
    with sim:
        assert list(sim.urls) == ["default"]
        assert sim.urls["default"] == sim.base_url + "/enclaves/default"
        for prefix in (sim.base_url, sim.urls["default"]):
            assert requests.get(prefix + "/healthz", timeout=5).json() == {"status": "ok"}
        body, evidence = attest(sim.base_url)
        assert evidence["runtime"] == "custom-runtime/1" and evidence["measurement"] == M_OPAQUE
        assert evidence["challenge_nonce"] != body["challenge_nonce"]
        sim.configure("default", mode="ok")
        body, evidence = attest(sim.base_url)
        assert evidence["challenge_nonce"] == body["challenge_nonce"]
        process = sim.process
    assert process.returncode == 0, "SIGTERM must stop the simulator cleanly"
    assert not (tmp_path / "ready.json").exists()
    assert (tmp_path / "trust.json").exists()


# -- failures are reported clearly ----------------------------------------------------------------

def test_bad_fleet_reports_simulator_error(tmp_path):
    with pytest.raises(SimulatorError, match=r"exited before it was ready[\s\S]*mode 'sideways' is unknown"):
        SimulatorFleet(tmp_path, enclaves=[{"name": "e1", "measurement": M_HEX, "mode": "sideways"}]).start()
    with pytest.raises(SimulatorError, match="appears twice"):
        SimulatorFleet(tmp_path, enclaves=[{"name": "e", "measurement": M_HEX}] * 2).start()
    with pytest.raises(SimulatorError, match="must match"):
        SimulatorFleet(tmp_path, enclaves=[{"name": "a/b", "measurement": M_HEX}]).start()


def test_cli_refuses_non_loopback_bind(tmp_path):
    result = subprocess.run([sys.executable, str(SIM_SCRIPT), "--state-dir", str(tmp_path),
                             "--measurement", M_HEX, "--bind", "0.0.0.0"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2 and "not a loopback" in result.stderr
    assert not (tmp_path / "ready.json").exists()


def test_fleet_cli_start_stop(tmp_path):
    fleet_file = tmp_path / "fleet-def.json"
    fleet_file.write_text(json.dumps({"enclaves": [{"name": "e1", "measurement": M_HEX, "mode": "ok"},
                                                   {"name": "e2", "measurement": M_OTHER, "mode": "debug"}]}))
    state = tmp_path / "state"

    def run(*args):
        return subprocess.run([sys.executable, str(FLEET_CLI), *args, "--state-dir", str(state)],
                              capture_output=True, text=True, timeout=60, check=False)

    started = run("start", "--fleet", str(fleet_file))
    assert started.returncode == 0, started.stderr
    pid = int((state / "sim.pid").read_text())
    ready = json.loads((state / "ready.json").read_text())
    assert ready["pid"] == pid and set(ready["enclaves"]) == {"e1", "e2"}
    assert requests.get(ready["enclaves"]["e1"]["url"] + "/healthz", timeout=5).status_code == 200
    again = run("start", "--fleet", str(fleet_file))
    assert again.returncode == 1 and "already running" in again.stderr
    stopped = run("stop", "--fleet", str(fleet_file))
    assert stopped.returncode == 0, stopped.stderr
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert not (state / "ready.json").exists() and not (state / "sim.pid").exists()
    assert "nothing to stop" in run("stop").stdout


# -- scale ---------------------------------------------------------------------------------------

def test_500_enclaves_in_one_process(tmp_path):
    enclaves = [{"name": f"e{i:03d}", "measurement": hashlib.sha384(b"%d" % i).hexdigest(),
                 "mode": "ok"} for i in range(500)]
    started = time.monotonic()
    with SimulatorFleet(tmp_path, enclaves=enclaves) as sim:
        startup = time.monotonic() - started
        print(f"\n500-enclave simulator ready in {startup:.2f}s")
        assert startup < 15, f"500 enclaves took {startup:.1f}s to start"
        assert len(sim.urls) == 500 and len({u.split(":")[2].split("/")[0] for u in sim.urls.values()}) == 1
        with requests.Session() as session, ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(lambda u: session.get(u + "/healthz", timeout=10).status_code,
                                  sim.urls.values()))
        assert codes == [200] * 500
        dummy, evidence = attest(sim.urls["e499"])
        assert evidence["measurement"] == enclaves[499]["measurement"]
        assert alfred_signature_ok(evidence, sim.trust["alfred_public_keys"])
    assert os.path.exists(tmp_path / "trust.json")


# -- the login side of the Vault runtime contract -----------------------------------------------

def test_public_tokens_never_carry_the_login_audience(fleet):
    """What anyone gets from the document endpoint is never a Vault login token, whatever they ask for."""
    assert fleet.trust["jwt_login_audience"] != fleet.trust["jwt_audience"]
    for extra in ({}, {"aud": fleet.trust["jwt_login_audience"]}, {"audience": fleet.trust["jwt_login_audience"]}):
        response = document(fleet.urls["ok"], "jwt", secrets.token_hex(16), **extra)
        if response.status_code != 200:
            continue
        dummy, claims = verify_jwt(response.text, fleet.trust["jwks"])
        assert claims["aud"] == fleet.trust["jwt_audience"], extra


def test_canary_endpoint_decrypts_canaries_only(fleet):
    """The canary endpoint is no oracle on real tokens: a context without tee_kms_purpose=canary is refused
    before any KMS is asked (this simulator has none, so an accepted request would answer 503)."""
    body = {"ciphertext_blob": base64.b64encode(b"vault:v1:AAAA").decode(), "key_id": "k",
            "encryption_context": {"token_key_id": "k", "token_version": "1"}, "nonce": secrets.token_hex(16)}
    refused = requests.post(fleet.urls["ok"] + "/v1/kms/canary", json=body, timeout=10)
    assert refused.status_code == 400 and "decrypts canaries only" in refused.json()["error"]
    marked = dict(body, encryption_context=dict(body["encryption_context"], tee_kms_purpose="canary"))
    assert requests.post(fleet.urls["ok"] + "/v1/kms/canary", json=marked, timeout=10).status_code == 503


def test_login_token_lifetime_is_configurable_and_checked(fleet):
    assert fleet.configure("ok", login_token_seconds=5)["login_token_seconds"] == 5
    try:
        for bad in (0, 3601, True, "5"):
            with pytest.raises(SimulatorError, match="login_token_seconds must be"):
                fleet.configure("ok", login_token_seconds=bad)
    finally:
        fleet.configure("ok", login_token_seconds=None)
