# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 22: the worst 1 MiB answers a hostile enclave can give, through a real loopback HTTP server,
are refused with a named check, never a traceback and never a stalled run. Each call runs under a
hang guard (a forked child with a 30 s deadline): these inputs took minutes to hours before."""

from __future__ import annotations

import datetime as dt
import json
import random
import re

import pytest
import requests

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import client
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.common import (
    MAX_NESTING, AttestationError, VerifyOptions, nesting_depth, result_row)
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import InputError, ProviderError
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow import probes
from ansible_collections.alfred.tee_kms.plugins.modules import health_check

from attest_testlib import AlfredWorld, JwtWorld, NitroWorld
from hang_guard import run_with_hang_guard
from hostile_answers import (SIZE, HostileServer, cross_signed_nitro_document, json_answers, jwt_answers, nitro_answers)

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
CTYPE = {"alfred": "application/json", "jwt": "application/jwt", "nitro": "application/cbor"}


@pytest.fixture(scope="module")
def worlds():
    return {"alfred": AlfredWorld(), "jwt": JwtWorld(), "nitro": NitroWorld(NOW)}


def _options(worlds) -> VerifyOptions:
    return VerifyOptions(public_keys=[worlds["alfred"].public_raw], root_certificate_pem=worlds["nitro"].root_pem,
                         jwks=worlds["jwt"].jwks, issuer="https://attest.example", audience="alfred-tee-kms")


def _cases():
    cases = [("alfred", name) for name in json_answers()]
    cases += [("jwt", name) for name in jwt_answers()]
    cases += [("nitro", name) for name in nitro_answers()]
    # nitro and jwt endpoints may answer JSON wrapping the document: the wrapper is parsed first.
    cases += [("nitro", f"json_{name}") for name in ("unterminated_escapes", "deep_nesting")]
    return cases


def _answer(fmt: str, name: str) -> tuple:
    if name.startswith("json_"):
        return json_answers()[name[5:]], "application/json"
    return {"alfred": json_answers, "jwt": jwt_answers, "nitro": nitro_answers}[fmt]()[name], CTYPE[fmt]


@pytest.mark.parametrize("fmt, name", _cases(), ids=lambda v: v)
def test_worst_case_1mib_answer_is_refused_by_name_without_stalling(worlds, fmt, name):
    body, ctype = _answer(fmt, name)
    assert len(body) <= SIZE
    with HostileServer(body, ctype) as server:
        row = run_with_hang_guard(client.attest_endpoint, server.url, fmt, _options(worlds), None, None, 5)
    assert row["verified"] is False and row["check"] in ("malformed", "signature"), row
    # Named by the verifier itself, not by the catch-all for what slipped past its checks.
    assert "could not be processed" not in row["reason"], row["reason"]


def test_cross_signed_same_named_cas_are_refused_without_a_path_search(worlds):
    document = cross_signed_nitro_document(worlds["nitro"])
    with HostileServer(document, "application/cbor") as server:
        row = run_with_hang_guard(client.attest_endpoint, server.url, "nitro", _options(worlds), None, None, 5)
    assert row["verified"] is False and row["check"] == "chain"
    assert "two certificates named 'hostile-ca'" in row["reason"]


@pytest.mark.parametrize("name", list(json_answers()))
def test_worst_case_1mib_jwks_is_refused_by_name(name):
    with HostileServer(json_answers()[name]) as server:
        with pytest.raises(InputError, match=r"^Could not load the JWKS: "):
            run_with_hang_guard(client.load_jwks, {"jwks_url": server.url + "/jwks.json"}, 5)


@pytest.mark.parametrize("name", list(json_answers()))
def test_worst_case_1mib_health_answer_is_unhealthy_not_a_traceback(name):
    with HostileServer(json_answers()[name]) as server:
        healthy, detail = run_with_hang_guard(client.healthz, server.url)
    assert healthy is False and detail.endswith("did not report status ok")


@pytest.mark.parametrize("name", list(json_answers()))
def test_worst_case_1mib_canary_answer_is_a_named_provider_error(name):
    with HostileServer(json_answers()[name]) as server:
        with pytest.raises(ProviderError, match=r"^Could not check the canary proof from the canary endpoint of enclave "
                                                r"http://127\.0\.0\.1:\d+: it answered HTTP 200 with a body that is not a JSON object"):
            run_with_hang_guard(probes.canary_proof, server.url, b"ciphertext", {}, b"canary", 5)


def _health(url: str) -> tuple:
    params = {"url": url, "timeout": 5, "validate_certs": True, "status": 200, "expect_status_ok": True}
    with requests.Session() as session:
        return health_check.attempt(session, params)


@pytest.mark.parametrize("body, detail", [
    (b"[" * 32768 + b"]" * 32768, 'did not report {"status": "ok"}'),   # json.loads raised RecursionError
    (b'{"status": "ok", "pad": "' + b"x" * SIZE + b'"}', "answered more than 65536 bytes"),  # read whole before
], ids=["deep_nesting", "one_mebibyte"])
def test_health_check_module_refuses_a_hostile_health_answer_by_name(body, detail):
    with HostileServer(body) as server:
        status, said = run_with_hang_guard(_health, server.url + "/healthz")
    assert status == 200 and said == detail


def _drip_calls():
    return {
        "evidence": (lambda url: client.fetch_evidence(url, "alfred", None, 1), AttestationError, r"did not answer within 1s \(timeout\)"),
        "health": (lambda url: client.healthz(url, timeout=1), None, r"did not answer within 1s \(timeout\)"),
        "jwks": (lambda url: client.load_jwks({"jwks_url": url}, 1), InputError, r"^Could not fetch the JWKS from .*within 1s"),
        "canary": (lambda url: probes.canary_proof(url, b"ct", {}, b"canary", 1), ProviderError,
                   r"did not answer within 1s or could not be reached \(127\.0\.0\.1:\d+ did not answer within 1s \(timeout\)\)"),
    }


@pytest.mark.parametrize("caller", list(_drip_calls()))
def test_a_server_dripping_its_headers_is_cut_at_the_deadline(caller):
    # Each header byte arrives within the per-read timeout; before issue 22 the request never ended.
    call, error, message = _drip_calls()[caller]
    with HostileServer(drip=0.2) as server:
        if error is None:
            healthy, detail = run_with_hang_guard(call, server.url)
            assert healthy is False and re.search(message, detail), detail
        else:
            with pytest.raises(error, match=message):
                run_with_hang_guard(call, server.url)


def _reference_depth(raw: bytes) -> int:
    depth = deepest = i = 0
    while i < len(raw):
        char = raw[i]
        if char == 0x22:
            i += 1
            while i < len(raw) and raw[i] != 0x22:
                i += 2 if raw[i] == 0x5C else 1
        elif char in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in b"]}":
            depth -= 1
        i += 1
    return deepest


def _random_json(rng, depth=0) -> str:
    roll = rng.random()
    if depth > 40 or roll < 0.3:
        return rng.choice(['1', '"a\\"b[{"', '"x"', 'null', '"\\\\"', '"]]}}"'])
    if roll < 0.65:
        return "[" + ",".join(_random_json(rng, depth + 1) for dummy in range(rng.randint(0, 3))) + "]"
    return "{" + ",".join(f'"k{i}":' + _random_json(rng, depth + 1) for i in range(rng.randint(0, 3))) + "}"


def _depths(texts) -> list:
    return [nesting_depth(text) for text in texts]


def test_nesting_check_is_exact_on_valid_json_and_linear_on_1mib_answers():
    rng = random.Random(22)
    documents = [_random_json(rng).encode() for dummy in range(2000)]
    for document in documents:
        json.loads(document)
    assert [nesting_depth(d) for d in documents] == [min(_reference_depth(d), MAX_NESTING + 1) for d in documents]
    hostile = json_answers()
    depths = dict(zip(hostile, run_with_hang_guard(_depths, list(hostile.values()))))
    assert depths == {"unterminated_escapes": 1, "unterminated_quotes": 1, "deep_nesting": MAX_NESTING + 1,
                      "nesting_at_cap": MAX_NESTING, "many_small_arrays": 2, "long_number": 1}


def test_nitro_cbor_tag_inside_the_document_is_refused_before_decoding(worlds):
    row = result_row("t", nitro_answers(4096)["tagged_bignum"], "nitro", _options(worlds))
    assert row["check"] == "malformed" and "has CBOR tag 4, expected none" in row["reason"], row


def test_nitro_timestamp_beyond_year_9999_is_malformed_not_an_overflow(worlds):
    document = worlds["nitro"].document(timestamp=2 ** 62)
    row = result_row("t", document, "nitro", _options(worlds))
    assert row["check"] == "malformed" and "timestamp must be a positive integer" in row["reason"], row


def test_jwt_key_id_with_control_sequences_is_escaped_in_the_reason(worlds):
    token = worlds["jwt"].token("ES256", header={"kid": "\x1b]0;owned\x07\x9b2J\nverified"})
    row = result_row("t", token, "jwt", _options(worlds))
    assert row["check"] == "signature"
    assert "\\x1b]0;owned\\x07\\x9b2J\\x0averified" in row["reason"]
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in row["reason"]), row["reason"]


def test_json_with_more_arrays_than_any_evidence_holds_is_refused_before_parsing(worlds):
    # A megabyte of small arrays parsed into some 350000 lists (0.5 s, with the garbage collector); counted first now.
    row = result_row("t", json_answers()["many_small_arrays"], "alfred", _options(worlds))
    assert row["check"] == "malformed" and "holds more than 4096 arrays and objects" in row["reason"], row
