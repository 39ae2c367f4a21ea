# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The worst answers a hostile enclave or KMS can give within the size limit (issue 22), and a
loopback HTTP server that gives them. Shared by the unit tests, the end-to-end rotation test and
benchmarks/bench_hostile.py, so that the benchmark measures exactly what the tests refuse.

Every answer is at most SIZE bytes (client.MAX_RESPONSE_BYTES: the transport refuses more) and
was slow or raised before issue 22: the string pattern of the JSON nesting check was quadratic
(hours for 1 MiB), json.loads raised RecursionError where the check was missing, cbor2 converted
attacker-chosen semantic tags, the certificate path builder searched exponentially, the CMS
reader indexed past short item lists and decoded long OIDs in quadratic time.
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SIZE = 1024 * 1024


def _fit(head: bytes, unit: bytes, tail: bytes, size: int) -> bytes:
    return head + unit * ((size - len(head) - len(tail)) // len(unit)) + tail


def json_answers(size: int = SIZE) -> dict:
    """JSON-ish texts of at most ``size`` bytes, by name."""
    return {
        # An unterminated string full of escaped quotes: the old string pattern restarted at each one.
        "unterminated_escapes": _fit(b'{"a": "', b'\\"', b"", size),
        "unterminated_quotes": _fit(b'{"a": ', b'"\\', b"", size),
        # json.loads recursed once per level: RecursionError where the nesting was not checked.
        "deep_nesting": b"[" * (size // 2) + b"]" * (size // 2),
        # As deep as allowed, over and over: the most work for the bracket passes, then for json.loads.
        "nesting_at_cap": _fit(b"[", b"[" * 31 + b"]" * 31 + b",", b"0]", size),
        "many_small_arrays": _fit(b"[", b"[],", b"[]]", size),
        "long_number": _fit(b"[", b"9", b"]", size),
    }


def jwt_answers(size: int = SIZE) -> dict:
    """Compact JWS tokens of at most ``size`` bytes whose header or payload is a hostile JSON text."""
    header = base64.urlsafe_b64encode(b'{"alg":"ES256","kid":"ec256"}').rstrip(b"=")
    inner = (size - len(header) - 16) * 3 // 4
    out = {}
    for name, text in json_answers(inner).items():
        segment = base64.urlsafe_b64encode(text).rstrip(b"=")
        out[f"payload_{name}"] = header + b"." + segment + b".c2ln"
    out["header_unterminated_escapes"] = (base64.urlsafe_b64encode(json_answers(inner)["unterminated_escapes"]).rstrip(b"=")
                                          + b".e30.c2ln")
    return out


def _cose(unprotected: bytes, payload: bytes = b"\x40") -> bytes:
    """A COSE_Sign1 array (ES384 protected header) around raw CBOR items, with an empty signature."""
    return b"\x84" + cbor2.dumps(cbor2.dumps({1: -35})) + unprotected + payload + b"\x40"


def nitro_answers(size: int = SIZE) -> dict:
    """CBOR documents of at most ``size`` bytes, by name."""
    bignum = size - 32
    return {
        # A decimal fraction (tag 4) of a bignum of a megabyte in the unprotected header: cbor2 turns it into a Decimal.
        "tagged_bignum": _cose(b"\xa1\x04\xc4\x82\x20\xc2\x5a" + bignum.to_bytes(4, "big") + b"\x7f" * bignum),
        "deep_nesting": _cose(b"\xa1\x04" + b"\x81" * (size - 40) + b"\x00"),
        "many_items": _cose(b"\xa1\x04\x9a" + (size - 40).to_bytes(4, "big") + b"\x80" * (size - 40)),
        "huge_declared_length": _cose(b"\xa1\x04\x9b" + (2 ** 63).to_bytes(8, "big")),
    }


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _cert(subject: str, issuer: str, public_key, signer, now, ca: bool):
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer)).public_key(public_key)
               .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
               .not_valid_after(now + dt.timedelta(days=1)))
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    else:
        builder = builder.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
    return builder.sign(signer, hashes.SHA384())


def cross_signed_nitro_document(world, per_key: int = 3) -> bytes:
    """A signed Nitro document whose cabundle holds 2 x ``per_key`` CAs named alike, each group signed by
    the other's key: every path through them fits by name and signature, none reaches the root. The old
    path builder tried them all (2 x 2: 5 s; 2 x 3: more than 5 minutes)."""
    now = world.now
    key_a, key_b = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())
    leaf_key = ec.generate_private_key(ec.SECP384R1())
    leaf = _cert("leaf", "hostile-ca", leaf_key.public_key(), key_a, now, ca=False)
    bundle = ([_cert("hostile-ca", "hostile-ca", key_a.public_key(), key_b, now, ca=True) for dummy in range(per_key)]
              + [_cert("hostile-ca", "hostile-ca", key_b.public_key(), key_a, now, ca=True) for dummy in range(per_key)])
    der = serialization.Encoding.DER
    payload = world.payload(certificate=leaf.public_bytes(der), cabundle=[c.public_bytes(der) for c in bundle])
    return world.document(payload=payload, signer=leaf_key)


def _der(tag: int, content: bytes) -> bytes:
    return bytes([tag, 0x84]) + len(content).to_bytes(4, "big") + content


def cms_answers(size: int = SIZE) -> dict:
    """CiphertextForRecipient envelopes of at most ``size`` bytes, by name."""
    oid = b"\x2a" + b"\xff" * (size - 32) + b"\x01"
    recipients = b"\x30\x00" * ((size - 64) // 2)
    enveloped = _der(0x30, b"\x02\x01\x02" + _der(0x31, recipients) + b"\x30\x00")
    return {
        # A contentType OID of a megabyte: decoded 7 bits at a time into one growing integer.
        "long_oid": _der(0x30, _der(0x06, oid) + b"\xa0\x00"),
        "many_recipients": _der(0x30, b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03" + _der(0xA0, enveloped)),
        "empty_algorithm": _der(0x30, b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03" + _der(0xA0, b"")),
    }


class HostileServer:
    """Answers every request with ``body`` (status, content type), or with ``body(request_body)`` when it
    is callable; ``drip`` sends the status line and then one header byte every ``drip`` seconds, for
    ever: each read stays inside any per-read timeout."""

    def __init__(self, body: bytes = b"", content_type: str = "application/json", status: int = 200, drip: float | None = None):
        owner = self
        self.body, self.content_type, self.status, self.drip = body, content_type, status, drip
        self.stop = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                received = self.rfile.read(length) if length else b""
                try:
                    if owner.drip is not None:
                        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                        while not owner.stop.wait(owner.drip):
                            self.wfile.write(b"a")
                            self.wfile.flush()
                        return
                    body = owner.body(received) if callable(owner.body) else owner.body
                    self.send_response(owner.status)
                    self.send_header("Content-Type", owner.content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up: that is the point

            do_GET = do_POST = _answer

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass

        self.httpd = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def elapsed(func, *args) -> tuple:
    """(seconds, outcome) of ``func(*args)``; the outcome is the result or the exception raised."""
    started = time.perf_counter()
    try:
        outcome = func(*args)
    except Exception as exc:  # noqa: BLE001 - the benchmark reports what each answer gave
        outcome = exc
    return time.perf_counter() - started, outcome
