# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The format-neutral layer (detection, decoding, result rows) and the live-enclave client,
against real HTTP servers on loopback."""

from __future__ import annotations

import base64
import datetime as dt
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import client
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.common import (
    CHECKS, AttestationError, VerifyOptions, decode_document, detect_format, digest, parse_time, result_row, verify)
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import InputError

from attest_testlib import AlfredWorld, JwtWorld, NitroWorld

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


# --------------------------------------------------------------------------- format layer

def test_detect_format():
    assert detect_format(b'{"a": 1}') == "alfred"
    assert detect_format(b"\x84\x40") == "nitro"
    assert detect_format(b"\xd2\x84") == "nitro"
    assert detect_format(b"eyJhbGciOiJFUzI1NiJ9.e30.c2ln") == "jwt"
    with pytest.raises(AttestationError) as info:
        detect_format(b"hello")
    assert info.value.check == "unknown_format"


def test_decode_document_forms():
    raw = b"\x84\x40\xa0\x40\x40"
    assert decode_document(raw) == raw
    assert decode_document(base64.b64encode(raw)) == raw
    assert decode_document(base64.b64encode(raw).decode() + "\n") == raw
    text = '{"x": "\u00fb\u00ff>>>???"}'.encode("utf-8")
    assert decode_document(base64.urlsafe_b64encode(text).decode().rstrip("=")) == text
    assert decode_document({"b": 1, "a": 2}) == b'{"a": 2, "b": 1}'
    assert decode_document("  eyJ.e30.sig \n") == b"eyJ.e30.sig"


def test_unknown_format_and_empty():
    options = VerifyOptions()
    for document, fmt in ((b"hello", None), (b"{}", "tpm")):
        with pytest.raises(AttestationError) as info:
            verify(document, fmt, options)
        assert info.value.check == "unknown_format"
    row = result_row("empty", b"", None, options)
    assert row["check"] == "malformed" and row["digest"] is None


def test_result_row_shape_and_digest_only():
    world = AlfredWorld()
    now = int(NOW.timestamp())
    doc = world.to_bytes(world.evidence(world.challenge(now)))
    row = result_row("src", doc, None, VerifyOptions(now=NOW + dt.timedelta(seconds=2), public_keys=[world.public_raw]))
    assert row["verified"] is True and row["reason"] == "verified" and row["format"] == "alfred"
    assert row["digest"] == digest(doc)
    assert set(row) == {"source", "format", "digest", "verified", "measurement", "reason", "issued_at"}
    assert json.loads(doc)["signature"] not in json.dumps(row)


def test_every_check_name_is_documented():
    module = (client.__file__.rsplit("/plugins/", 1)[0]) + "/plugins/modules/attestation_verify.py"
    text = open(module, encoding="utf-8").read()
    for check in CHECKS:
        assert f"V({check})" in text, check


def test_parse_time():
    assert parse_time("2024-09-07T14:37:39.545Z") == dt.datetime(2024, 9, 7, 14, 37, 39, 545000, tzinfo=dt.timezone.utc)
    assert parse_time("2024-09-07T16:37:39+02:00").hour == 14
    assert parse_time(0).year == 1970


# --------------------------------------------------------------------------- a real loopback server

class _QuietServer(ThreadingHTTPServer):
    # Handler threads are joined on close: a daemon thread still sleeping in the `slow` handler
    # when the interpreter exits can abort it ("FATAL: exception not rethrown").
    daemon_threads = False
    block_on_close = True

    def handle_error(self, request, client_address):
        pass  # clients that gave up (timeouts) leave broken pipes behind; that is the point


class _Server:
    """Minimal enclave fleet: /e/<name>/... with per-name behaviour, on loopback."""

    def __init__(self):
        self.behaviour = {}
        self.jwt = JwtWorld()
        self.nitro = NitroWorld(NOW)
        self.alfred = AlfredWorld()
        self.fixed_nitro = self.nitro.document()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, body, ctype):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                owner.handle(self, "GET")

            def do_POST(self):
                owner.handle(self, "POST")

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, name):
        return f"{self.base}/e/{name}"

    def handle(self, handler, method):
        parts = urlsplit(handler.path)
        name, *rest = parts.path.split("/")[2:]
        sub = "/" + "/".join(rest)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        mode = self.behaviour.get(name, "ok")
        if mode == "slow":
            time.sleep(2.5)
        if mode == "error":
            return handler._reply(500, b"boom", "text/plain")
        if mode == "huge":
            return handler._reply(200, b"x" * (client.MAX_RESPONSE_BYTES + 10), "text/plain")
        if mode == "deep":  # issue 13 item 6: unauthenticated, deeply nested JSON
            handler.rfile.read(int(handler.headers.get("Content-Length") or 0))  # read the challenge, then answer
            deep = b"[" * 200000 + b"]" * 200000
            if query.get("format") == "jwt":
                head = base64.urlsafe_b64encode(b'{"alg":"ES256"}').rstrip(b"=")
                return handler._reply(200, head + b"." + base64.urlsafe_b64encode(deep).rstrip(b"=") + b".c2ln", "application/jwt")
            return handler._reply(200, b'{"document": ' + deep + b"}" if query.get("format") else deep, "application/json")
        if sub == "/healthz":
            return handler._reply(200, b'{"status":"ok"}', "application/json")
        if sub == "/v1/attestation/challenge" and method == "POST":
            challenge = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
            doc = self.alfred.evidence(challenge, evidence_issued_at=challenge["issued_at"])
            return handler._reply(200, json.dumps(doc).encode(), "application/json")
        if sub == "/v1/attestation/document":
            fmt, nonce = query.get("format"), query.get("nonce")
            if fmt == "nitro":
                if mode == "replay":
                    return handler._reply(200, self.fixed_nitro, "application/cbor")
                doc = self.nitro.document(nonce=bytes.fromhex(nonce))
                if mode == "wrapped":
                    body = json.dumps({"document": base64.b64encode(doc).decode()}).encode()
                    return handler._reply(200, body, "application/json")
                return handler._reply(200, doc, "application/cbor")
            if fmt == "jwt":
                now = int(time.time())
                token = self.jwt.token("ES256", claims=self.jwt.claims(now, eat_nonce=nonce), now=now)
                return handler._reply(200, token.encode(), "application/jwt")
        return handler._reply(404, b"no", "text/plain")

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server():
    srv = _Server()
    yield srv
    srv.close()


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _options(server, **kwargs):
    return VerifyOptions(public_keys=[server.alfred.public_raw], root_certificate_pem=server.nitro.root_pem,
                         jwks=server.jwt.jwks, issuer="https://attest.example", audience="alfred-tee-kms", **kwargs)


def test_url_helpers():
    assert client.host_port("https://user:pw@enclave:8443/x?y=1") == "enclave:8443"
    assert client.host_port("http://enclave/") == "enclave:80"
    assert client.host_port("https://[::1]/") == "[::1]:443"
    assert client.safe_source("https://user:pw@enclave:8443/e/1?token=abc#f") == "https://enclave:8443/e/1"


@pytest.mark.parametrize("fmt", ["alfred", "nitro", "jwt"])
def test_fetch_and_verify_each_format(server, fmt):
    row = client.attest_endpoint(server.url(f"ok-{fmt}"), fmt, _options(server))
    assert row["verified"] is True, row
    assert row["format"] == fmt and row["elapsed_ms"] >= 0


def test_fetch_evidence_binds_a_fresh_nonce(server):
    doc1, req1 = client.fetch_evidence(server.url("a"), "alfred")
    doc2, req2 = client.fetch_evidence(server.url("a"), "alfred")
    assert req1["challenge_nonce"] != req2["challenge_nonce"] and len(req1["challenge_nonce"]) == 64
    assert req1["request_id"] != req2["request_id"]
    assert req1["expires_at"] - req1["issued_at"] == client.DEFAULT_WINDOW
    assert json.loads(doc1)["challenge_nonce"] == req1["challenge_nonce"]
    _doc, req = client.fetch_evidence(server.url("a"), "nitro")
    assert set(req) == {"nonce", "format"} and len(req["nonce"]) == 64


def test_json_wrapped_document(server):
    server.behaviour["wrapped"] = "wrapped"
    assert client.attest_endpoint(server.url("wrapped"), "nitro", _options(server))["verified"] is True


def test_fetch_failures_name_host_port_and_cause(server):
    server.behaviour.update({"err": "error", "huge": "huge"})
    dead = f"http://127.0.0.1:{_free_port()}"
    rows = client.attest_endpoints([server.url("err"), dead, server.url("huge"), server.base + "/nowhere"], "nitro",
                                   _options(server), timeout=2)
    port = server.base.rsplit(":", 1)[1]
    assert [r["check"] for r in rows] == ["fetch"] * 4
    assert rows[0]["reason"] == f"fetch: 127.0.0.1:{port} answered HTTP 500 on /v1/attestation/document"
    assert "refused the connection" in rows[1]["reason"] and dead.split("//")[1] in rows[1]["reason"]
    assert "answered more than" in rows[2]["reason"]
    assert "HTTP 404" in rows[3]["reason"]
    assert all("Traceback" not in r["reason"] and r["digest"] is None for r in rows)


def test_slow_enclave_times_out_without_stalling_others(server):
    server.behaviour["slow"] = "slow"
    urls = [server.url("fast1"), server.url("slow"), server.url("fast2")]
    started = time.monotonic()
    rows = client.attest_endpoints(urls, "jwt", _options(server), timeout=1)
    elapsed = time.monotonic() - started
    assert [r["source"] for r in rows] == urls
    assert [r["verified"] for r in rows] == [True, False, True]
    assert rows[1]["check"] == "fetch" and "within 1s" in rows[1]["reason"]
    assert rows[1]["elapsed_ms"] >= 900  # it waited for its timeout; timings beyond that are not asserted
    print(f"slow fleet of 3: {elapsed:.2f}s (the slow handler sleeps 2.5 s; the timeout is 1 s)")


def test_replay_detected_across_endpoints(server):
    server.behaviour.update({"r1": "replay", "r2": "replay"})
    rows = client.attest_endpoints([server.url("r1"), server.url("ok"), server.url("r2")], "nitro",
                                   VerifyOptions(root_certificate_pem=server.nitro.root_pem), timeout=2)
    # The replayed document also lacks the fresh nonce; replay is what the fleet view adds.
    assert [r.get("check") for r in rows] == ["replay", None, "replay"]
    assert rows[0]["digest"] == rows[2]["digest"]
    assert server.url("r2") in rows[0]["reason"] and server.url("r1") in rows[2]["reason"]
    assert rows[1]["verified"] is True


def test_many_endpoints_keep_input_order(server):
    urls = [server.url(f"n{i}") for i in range(40)]
    rows = client.attest_endpoints(urls, "alfred", _options(server), workers=8)
    assert [r["source"] for r in rows] == urls
    assert all(r["verified"] for r in rows)
    assert len({r["digest"] for r in rows}) == 40


def test_healthz(server):
    assert client.healthz(server.url("h"))[0] is True
    server.behaviour["sick"] = "error"
    healthy, detail = client.healthz(server.url("sick"))
    assert healthy is False and "HTTP 500" in detail
    assert client.healthz(f"http://127.0.0.1:{_free_port()}")[0] is False


# --------------------------------------------------------------------------- option building

def test_options_from_params_validates(tmp_path, server):
    with pytest.raises(InputError, match="32-byte Ed25519"):
        client.options_from_params({"public_keys": ["AAAA"]})
    with pytest.raises(InputError, match="PEM certificate"):
        client.options_from_params({"root_certificate": "-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----"})
    with pytest.raises(InputError, match="No such file"):
        client.options_from_params({"root_certificate": str(tmp_path / "missing.pem")})
    with pytest.raises(InputError, match="ISO 8601"):
        client.options_from_params({"verification_time": "yesterday"})
    with pytest.raises(InputError, match="0..31"):
        client.options_from_params({"nitro_pcrs": [0, 0]})
    with pytest.raises(InputError, match="not JSON"):
        client.options_from_params({"jwks": "{not json"})
    pem = tmp_path / "root.pem"
    pem.write_bytes(server.nitro.root_pem)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(server.jwt.jwks))
    options = client.options_from_params({"root_certificate": str(pem), "jwks": str(jwks), "public_keys": [server.alfred.public_b64],
                                          "verification_time": "2024-09-07T14:37:39Z", "nitro_pcrs": [0, 1]})
    assert options.root_certificate_pem == server.nitro.root_pem
    assert options.jwks == server.jwt.jwks and options.public_keys == [server.alfred.public_raw]
    assert options.now == dt.datetime(2024, 9, 7, 14, 37, 39, tzinfo=dt.timezone.utc)


def test_jwks_url(server):
    server.behaviour["jwks"] = "ok"
    with pytest.raises(InputError, match="HTTP 404"):
        client.options_from_params({"jwks_url": server.url("jwks") + "/missing"})
    with pytest.raises(InputError, match="refused"):
        client.options_from_params({"jwks_url": f"http://127.0.0.1:{_free_port()}/jwks"})


def test_normalize_allowed():
    assert client.normalize_allowed([" AB" * 1 + "CD ", "0xEF", "sha256:ABC", "ab" + "cd", ""]) == ["abcd", "ef", "sha256:ABC"]
    assert client.normalize_allowed(None) is None


# --------------------------------------------------------------------------- issue 13, item 6

@pytest.mark.parametrize("fmt", ["alfred", "nitro", "jwt"])
def test_deeply_nested_json_from_one_enclave_does_not_abort_the_fleet(server, fmt):
    server.behaviour["deep"] = "deep"
    rows = client.attest_endpoints([server.url("ok1"), server.url("deep"), server.url("ok2")], fmt, _options(server))
    assert [r["verified"] for r in rows] == [True, False, True]
    assert rows[1]["check"] == "malformed", rows[1]
    assert "Traceback" not in rows[1]["reason"] and "RecursionError" not in rows[1]["reason"]


@pytest.mark.parametrize("fmt, document", [
    ("alfred", b"[" * 100000 + b"]" * 100000),
    (None, b'{"a": ' + b"{" * 50000 + b"}" * 50000 + b"}"),
    (None, base64.urlsafe_b64encode(b'{"alg":"ES256"}').rstrip(b"=") + b"."
     + base64.urlsafe_b64encode(b"[" * 100000 + b"]" * 100000).rstrip(b"=") + b".c2ln"),
], ids=["alfred_array", "alfred_object", "jwt_payload"])
def test_deeply_nested_evidence_is_a_refusal_row_not_a_traceback(server, fmt, document):
    row = result_row("t", document, fmt, _options(server))
    assert row["verified"] is False and row["check"] == "malformed"
    assert "nests deeper than" in row["reason"]


def test_nesting_depth_ignores_brackets_inside_strings():
    from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.common import nesting_depth

    assert nesting_depth(b'{"a": "[[[[[[\\\"{{{{", "b": [[1]]}') == 3
    assert nesting_depth(b"{}") == 1 and nesting_depth(b"1") == 0
