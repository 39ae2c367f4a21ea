# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The enclave HTTP transport (kept-alive connections on the standard library) against real
loopback servers: plain, TLS, a proxy, and a server that drops idle connections."""

from __future__ import annotations

import base64
import datetime as dt
import json
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import client, transport
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.common import AttestationError, VerifyOptions

from attest_testlib import AlfredWorld


class _Enclaves:
    """Alfred enclaves under /e/<name> on one HTTP/1.1 keep-alive server; counts connections and requests."""

    def __init__(self, *, idle_close: bool = False, tls_context=None):
        self.alfred = AlfredWorld()
        self.connections = 0
        self.seen = []  # (path, headers) of every request
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with owner.lock:
                    owner.connections += 1

            def log_message(self, *args):
                pass

            def do_POST(self):
                challenge = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with owner.lock:
                    owner.seen.append((self.path, dict(self.headers), challenge["challenge_nonce"]))
                body = json.dumps(owner.alfred.evidence(challenge, evidence_issued_at=challenge["issued_at"])).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if idle_close:
                    # Keep-alive promised, then the connection is dropped once idle (a server's idle timeout).
                    self.wfile.flush()
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls_context is not None:
            self.httpd.socket = tls_context.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        scheme = "https" if tls_context is not None else "http"
        self.base = f"{scheme}://localhost:{self.httpd.server_address[1]}"

    def url(self, name):
        return f"{self.base}/e/{name}"

    def options(self):
        return VerifyOptions(public_keys=[self.alfred.public_raw])

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def enclaves():
    server = _Enclaves()
    yield server
    server.close()


def test_a_fleet_is_attested_on_kept_alive_connections(enclaves):
    urls = [enclaves.url(f"n{i}") for i in range(60)]
    rows = client.attest_endpoints(urls, "alfred", enclaves.options(), workers=4)
    assert all(r["verified"] for r in rows), rows
    # 60 fresh challenges (one nonce each), on at most one connection per thread.
    assert len({nonce for _p, _h, nonce in enclaves.seen}) == 60
    assert enclaves.connections <= 4, enclaves.connections


def test_each_request_gets_its_own_fresh_nonce_on_a_shared_connection(enclaves):
    session = client.new_session()
    requests_sent = [client.fetch_evidence(enclaves.url("a"), "alfred", session=session)[1] for dummy in range(3)]
    session.close()
    assert len({r["challenge_nonce"] for r in requests_sent}) == 3 and len({r["request_id"] for r in requests_sent}) == 3
    assert enclaves.connections == 1


def test_url_credentials_are_sent_as_basic_auth_and_never_recorded(enclaves):
    url = enclaves.url("auth").replace("http://", "http://ops%40corp:p%3Ass@")
    row = client.attest_endpoint(url, "alfred", enclaves.options())
    assert row["verified"] is True and row["source"] == enclaves.url("auth")
    _path, headers, _nonce = enclaves.seen[-1]
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"ops@corp:p:ss").decode()
    assert "p:ss" not in json.dumps(row) and "p%3Ass" not in json.dumps(row)


def test_a_connection_the_server_dropped_while_idle_is_not_reused():
    server = _Enclaves(idle_close=True)
    try:
        session = client.new_session()
        rows = []
        for i in range(5):
            rows.append(client.attest_endpoint(server.url(f"d{i}"), "alfred", server.options(), session=session))
            time.sleep(0.2)  # idle: the server closes the connection it said it would keep
        session.close()
    finally:
        server.close()
    assert [r["verified"] for r in rows] == [True] * 5, rows
    assert server.connections == 5


def test_a_direct_attestation_does_not_import_requests(enclaves):
    """Importing requests costs about 50 ms in every Ansible task that attests; a direct request needs none of it."""
    code = (
        "import sys, json\n"
        "from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import client\n"
        "from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.common import VerifyOptions\n"
        f"rows = client.attest_endpoints([{enclaves.url('x')!r}], 'alfred', VerifyOptions(public_keys=[{enclaves.alfred.public_raw!r}]))\n"
        "print(json.dumps([rows[0]['verified'], 'requests' in sys.modules]))\n")
    env = {"PYTHONPATH": ":".join(sys.path), "PATH": "/usr/bin:/bin", "NO_PROXY": "*"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [True, False]


# --------------------------------------------------------------------------- proxies: requests, as before

class _Proxy:
    """A forwarding HTTP proxy on loopback (absolute-URI requests), recording what it forwarded."""

    def __init__(self):
        self.forwarded = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.forwarded.append(self.path)
                request = urllib.request.Request(self.path, data=body, method="POST",
                                                 headers={"Content-Type": self.headers["Content-Type"]})
                with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=5) as answer:
                    data = answer.read()
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.headers["Content-Type"])
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_an_enclave_behind_a_proxy_is_reached_through_it(enclaves, monkeypatch):
    proxy = _Proxy()
    try:
        for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("http_proxy", proxy.url)
        rows = client.attest_endpoints([enclaves.url("p1"), enclaves.url("p2")], "alfred", enclaves.options())
        monkeypatch.setenv("no_proxy", "localhost")
        direct = client.attest_endpoint(enclaves.url("p3"), "alfred", enclaves.options())
    finally:
        proxy.close()
    assert [r["verified"] for r in rows] == [True, True]
    assert sorted(proxy.forwarded) == [enclaves.url("p1") + client.CHALLENGE_PATH, enclaves.url("p2") + client.CHALLENGE_PATH]
    assert direct["verified"] is True and len(proxy.forwarded) == 2


def test_proxy_decision_never_guesses_direct():
    proxies = {"http": "http://proxy:3128", "no": "enclaves.internal,10.0.0.0/8"}
    assert transport.may_use_proxy("http://a.enclaves.internal/e", proxies) is False
    assert transport.may_use_proxy("http://other.example/e", proxies) is True
    # A CIDR entry is requests' business: urllib cannot tell, so requests decides.
    assert transport.may_use_proxy("http://10.1.2.3/e", proxies) is True
    assert transport.may_use_proxy("https://other.example/e", proxies) is False  # no https proxy configured
    assert transport.may_use_proxy("https://other.example/e", {"all": "socks5://p:1080"}) is True


# --------------------------------------------------------------------------- TLS

@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder


def test_tls_enclave_is_verified_against_the_configured_bundle(tls_files, monkeypatch):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files / "cert.pem", tls_files / "key.pem")
    server = _Enclaves(tls_context=context)
    try:
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        untrusted = client.attest_endpoint(server.url("t"), "alfred", server.options(), timeout=3)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_files / "cert.pem"))
        trusted = client.attest_endpoint(server.url("t"), "alfred", server.options(), timeout=3)
        wrong_name = client.attest_endpoint(server.url("t").replace("localhost", "127.0.0.1"), "alfred", server.options(), timeout=3)
    finally:
        server.close()
    # A certificate nobody trusts is refused before any evidence is read, naming the cause.
    assert untrusted["verified"] is False and untrusted["check"] == "fetch"
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted["reason"] and untrusted["digest"] is None
    assert trusted["verified"] is True, trusted
    # The certificate names localhost, not 127.0.0.1: the host name is checked.
    assert wrong_name["verified"] is False and wrong_name["check"] == "fetch"


def test_fetch_error_names_the_cause_for_a_bad_url():
    with pytest.raises(AttestationError, match="unsupported URL ftp"):
        client.fetch_evidence("ftp://enclave/x", "alfred", timeout=1)


def test_a_slow_body_is_cut_at_the_deadline():
    class Dribble(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", str(100 * 1000))
            self.end_headers()
            try:
                for dummy in range(100):  # each chunk inside the per-read timeout, the whole far beyond it
                    self.wfile.write(b"x" * 1000)
                    self.wfile.flush()
                    time.sleep(0.3)
            except OSError:
                pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Dribble)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(AttestationError, match=r"did not answer within 1s \(timeout\)"):
            client.fetch_evidence(f"http://127.0.0.1:{httpd.server_address[1]}/e", "alfred", timeout=1)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert time.monotonic() - started < 5
