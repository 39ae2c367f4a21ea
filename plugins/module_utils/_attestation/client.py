# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fetch attestation evidence from live enclaves and verify it; the engine of attestation_verify.

Private module_utils: the API may change without notice between releases.

Live evidence is always bound to a fresh nonce (``secrets.token_hex(32)``) per request:
- a format that echoes a challenge (alfred): ``POST {url}/v1/attestation/challenge`` with
  ``{challenge_nonce, issued_at, expires_at, operation_purpose, request_id}``; the answer must echo
  the challenge;
- the others (nitro, jwt): ``GET {url}/v1/attestation/document?format=<fmt>&nonce=<hex>``; the
  document must carry the nonce (nitro: its bytes; jwt: the hex string in ``eat_nonce``/``nonce``).
What each format sends is its ``live_request`` (``base.AttestationFormat``).

``attest_endpoints`` attests many enclaves concurrently on one session of kept-alive connections
(``transport.Session``) with a bounded thread pool; every request has its own deadline, so one slow or dead enclave
costs at most ``timeout`` seconds of one worker and never stalls the others. Failures are
result rows (check ``fetch`` naming host:port and the cause), never exceptions.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import secrets
import time
from urllib.parse import urlsplit, urlunsplit

# The formats come from registry.py, which imports every format file explicitly (what AnsiballZ packs).
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.common import (
    AttestationError, VerifyOptions, decode_document, digest, loads_json, parse_time, result_row, utcnow)
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import registry, transport, trust
from ansible_collections.alfred.tee_kms.plugins.module_utils._common import deps
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import InputError, MissingLibraryError

CHALLENGE_PATH = "/v1/attestation/challenge"
DOCUMENT_PATH = "/v1/attestation/document"
HEALTH_PATH = "/healthz"
DEFAULT_WINDOW = 300              # seconds an alfred challenge stays valid
DEFAULT_PURPOSE = "attestation-verify"
MAX_RESPONSE_BYTES = 1024 * 1024  # evidence is a few KiB; refuse anything absurd
MAX_DOCUMENT_FILE_BYTES = trust.MAX_FILE_BYTES
# Libraries the live client needs for a URL the environment may send through a proxy (the
# verifiers declare their own; a direct request needs only the standard library).
REQUIREMENTS = (deps.REQUESTS,)


# --------------------------------------------------------------------------- HTTP

def host_port(url: str) -> str:
    """``host:port`` of a URL, for messages (never userinfo, path or query)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or "?"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def safe_source(url: str) -> str:
    """The URL as recorded in results: without userinfo, query or fragment."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def new_session():
    """A session for enclave requests: kept-alive connections, shared by threads (transport.Session)."""
    return transport.Session()


def _proxied_session(session):
    """The requests Session of the URLs the environment may send through a proxy: requests handles proxies as before."""
    for requirement in REQUIREMENTS:
        requirement.check("live attestation through a proxy")

    def make():
        import requests
        from requests.adapters import HTTPAdapter

        proxied = requests.Session()
        adapter = HTTPAdapter(pool_connections=16, pool_maxsize=16, max_retries=0)
        proxied.mount("http://", adapter)
        proxied.mount("https://", adapter)
        proxied.headers["User-Agent"] = transport.USER_AGENT
        return proxied
    return session.proxied_session(make)


def _fetch_error(url: str, cause: str) -> AttestationError:
    return AttestationError("fetch", f"{host_port(url)} {cause}")


def http_request(session, method: str, url: str, timeout: float, **kwargs):
    """Return (status, content_type, body) or raise AttestationError('fetch', ...).

    ``timeout`` bounds connecting, each read and (checked between chunks) the whole body.
    ``kwargs``: ``json`` (a body sent as JSON) and ``params`` (query parameters).
    """
    if session.may_use_proxy(url):
        return _proxied_request(_proxied_session(session), method, url, timeout, **kwargs)
    try:
        return session.request(method, url, timeout, MAX_RESPONSE_BYTES, json_body=kwargs.get("json"), params=kwargs.get("params"))
    except transport.FetchError as exc:
        raise _fetch_error(url, exc.cause) from None


def _proxied_request(proxied, method: str, url: str, timeout: float, **kwargs):
    import requests

    deadline = time.monotonic() + timeout
    try:
        with proxied.request(method, url, timeout=(timeout, timeout), stream=True,
                             allow_redirects=False, **kwargs) as response:
            chunks, size = [], 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise _fetch_error(url, f"answered more than {MAX_RESPONSE_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise _fetch_error(url, f"did not answer within {timeout:g}s (timeout)")
                chunks.append(chunk)
            return response.status_code, response.headers.get("Content-Type", ""), b"".join(chunks)
    except requests.Timeout:
        raise _fetch_error(url, f"did not answer within {timeout:g}s (timeout)") from None
    except requests.ConnectionError as exc:
        text = str(exc).lower()
        cause = ("refused the connection" if "refused" in text
                 else "reset the connection" if "reset" in text or "aborted" in text
                 else "could not be reached (connection error)")
        raise _fetch_error(url, cause) from None
    except requests.RequestException as exc:
        raise _fetch_error(url, f"could not be fetched ({exc.__class__.__name__})") from None


def healthz(url: str, session=None, timeout: float = 5) -> tuple:
    """GET {url}/healthz -> (healthy, detail). Healthy means 200 with {"status": "ok"}."""
    own = session is None
    session = session or new_session()
    try:
        status, _ctype, body = http_request(session, "GET", url.rstrip("/") + HEALTH_PATH, timeout)
    except AttestationError as exc:
        return False, exc.detail
    finally:
        if own:
            session.close()
    if status != 200:
        return False, f"{host_port(url)} answered HTTP {status} on {HEALTH_PATH}"
    try:
        healthy = loads_json(body, "the health answer").get("status") == "ok"
    except (AttestationError, AttributeError):
        healthy = False
    return (True, f"{host_port(url)} is healthy") if healthy else (False, f"{host_port(url)} did not report status ok")


def _document_from_body(content_type: str, body: bytes, fmt: str) -> bytes:
    """nitro/jwt endpoints may answer raw CBOR, a JWT/base64 text or JSON wrapping either."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == "application/json" or body.lstrip()[:1] == b"{":
        try:
            wrapper = loads_json(body, "the evidence answer")
        except AttestationError:
            return body  # not a wrapper: the verifier refuses (and names) what the body is
        if isinstance(wrapper, dict):
            for name in ("document", "token", "evidence", "attestation_document"):
                if isinstance(wrapper.get(name), str):
                    return decode_document(wrapper[name])
        return body
    return decode_document(body)


def fetch_evidence(url: str, fmt: str, session=None, timeout: float = 5, operation_purpose: str = DEFAULT_PURPOSE,
                   window: int = DEFAULT_WINDOW, nonce: str | None = None, now=None) -> tuple:
    """Get fresh evidence from one enclave: ``(document_bytes, request)``.

    ``request`` is what was sent: for alfred the challenge (pass it as
    ``VerifyOptions.request`` for the echo check), for nitro/jwt ``{"nonce", "format"}``.
    Raises AttestationError with check ``fetch`` when the enclave cannot be reached or
    answers an error.
    """
    attestation_format = registry.attestation_format(fmt)
    own = session is None
    session = session or new_session()
    nonce = nonce or secrets.token_hex(32)
    base = url.rstrip("/")
    try:
        request = attestation_format.live_request(nonce, int((now or utcnow()).timestamp()), window, operation_purpose)
        if attestation_format.echoes_challenge:
            status, ctype, body = http_request(session, "POST", base + CHALLENGE_PATH, timeout, json=request)
            path = CHALLENGE_PATH
        else:
            status, ctype, body = http_request(session, "GET", base + DOCUMENT_PATH, timeout,
                                               params={"format": fmt, "nonce": nonce})
            path = DOCUMENT_PATH
    finally:
        if own:
            session.close()
    if status != 200:
        raise _fetch_error(url, f"answered HTTP {status} on {path}")
    if not body.strip():
        raise _fetch_error(url, f"answered an empty body on {path}")
    # A challenge answer is the document itself; a document endpoint may wrap it (JSON, base64).
    document = body if attestation_format.echoes_challenge else _document_from_body(ctype, body, fmt)
    return document, request


# --------------------------------------------------------------------------- fleet

def _fetch_row(url: str, fmt: str, exc: AttestationError) -> dict:
    return {"source": safe_source(url), "format": fmt, "digest": None, "verified": False,
            "measurement": None, "reason": str(exc), "check": exc.check}


def attest_endpoint(url: str, fmt: str, base_options: VerifyOptions, allowed=None, session=None,
                    timeout: float = 5, operation_purpose: str = DEFAULT_PURPOSE) -> dict:
    """Fetch fresh evidence from one enclave and verify it; always returns a result row."""
    started = time.monotonic()
    try:
        document, request = fetch_evidence(url, fmt, session=session, timeout=timeout,
                                           operation_purpose=operation_purpose)
    except AttestationError as exc:
        row = _fetch_row(url, fmt, exc)
    except (ImportError, MissingLibraryError):
        raise
    except Exception as exc:  # noqa: BLE001 pylint: disable=broad-exception-caught
        # One enclave's answer must never abort the attestation of the whole fleet.
        cause = f"{host_port(url)} answered something that could not be processed ({exc.__class__.__name__})"
        row = _fetch_row(url, fmt, AttestationError("fetch", cause))
    else:
        options = dataclasses.replace(base_options, now=utcnow(), nonce=request.get("challenge_nonce", request.get("nonce")),
                                      request=registry.attestation_format(fmt).verify_request(request))
        row = result_row(safe_source(url), document, fmt, options, allowed)
    row["elapsed_ms"] = int((time.monotonic() - started) * 1000)
    return row


def mark_replays(rows: list) -> list:
    """Two sources answering the very same document in one call: refuse all of them."""
    by_digest = {}
    for row in rows:
        if row.get("digest"):
            by_digest.setdefault(row["digest"], []).append(row)
    for same in by_digest.values():
        if len(same) < 2:
            continue
        sources = [r["source"] for r in same]
        for row in same:
            others = ", ".join(s for s in sources if s != row["source"]) or row["source"]
            row.update(verified=False, check="replay",
                       reason=f"replay: the same evidence ({row['digest'][:23]}...) was also returned by {others}")
    return rows


def attest_endpoints(urls, fmt: str, base_options: VerifyOptions, allowed=None, workers: int = 16,
                     timeout: float = 5, operation_purpose: str = DEFAULT_PURPOSE, session=None) -> list:
    """Attest every URL concurrently; one result row per URL, in input order."""
    urls = list(urls)
    if not urls:
        return []
    workers = max(1, min(int(workers), len(urls)))
    own = session is None
    session = session or new_session()
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="attest") as pool:
            futures = [pool.submit(attest_endpoint, url, fmt, base_options, allowed, session, timeout, operation_purpose)
                       for url in urls]
            # Bad evidence and unreachable enclaves are rows already; anything raised here is a bug
            # or a broken installation and is not disguised as an enclave failure.
            rows = [future.result() for future in futures]
    finally:
        if own:
            session.close()
    return mark_replays(rows)


# --------------------------------------------------------------------------- module glue

def trust_argument_spec() -> dict:
    """The trust fields as flat options (deprecated in attestation_verify: use its ``trust`` option)."""
    return trust.argument_spec()


def freshness_argument_spec() -> dict:
    """Freshness rules (doc fragment alfred.tee_kms.attestation.freshness)."""
    return dict(
        nonce=dict(type="str"),
        max_age=dict(type="int"),
        verification_time=dict(type="str"),
        clock_skew=dict(type="int", default=60),
    )


def load_jwks(checked: dict, timeout: float):
    """The JWKS of a validated trust: fetched once from ``jwks_url``, or parsed from ``jwks``."""
    if not checked.get("jwks_url"):
        return trust.parse_jwks(checked["jwks"], trust.TASK) if checked.get("jwks") is not None else None
    url = checked["jwks_url"]
    session = new_session()
    try:
        status, _ctype, body = http_request(session, "GET", url, timeout)
    except AttestationError as exc:
        raise InputError("fetch", f"the JWKS from {host_port(url)}", exc.detail.split(" ", 1)[-1]) from None
    finally:
        session.close()
    if status != 200:
        raise InputError("fetch", f"the JWKS from {host_port(url)}", f"HTTP {status}")
    try:
        jwks = loads_json(body, "the JWKS")
    except AttestationError as exc:
        raise InputError("load", "the JWKS", exc.detail) from None
    return trust.check_jwks(jwks, trust.TASK)


def trust_from_params(params: dict) -> dict:
    """The trust of an attestation_verify task: its ``trust`` option, or the deprecated flat options."""
    if params.get("trust") is not None:
        return dict(params["trust"])
    return {name: params.get(name) for name in trust.FIELDS if name not in trust.NOT_FLAT}


def options_from_params(params: dict) -> VerifyOptions:
    """Validate the trust/freshness parameters and build VerifyOptions; raise InputError."""
    checked = trust.validate(trust_from_params(params), trust.TASK)

    now = utcnow()
    if params.get("verification_time"):
        try:
            now = parse_time(params["verification_time"])
        except ValueError:
            raise InputError("parse", f"verification_time '{params['verification_time']}'", "it is not ISO 8601") from None
    max_age = params.get("max_age") if params.get("max_age") is not None else checked.get("max_age")
    if max_age is not None and max_age < 0:
        raise InputError("validate", "max_age", "it must not be negative")

    return trust.verify_options(checked, jwks=load_jwks(checked, float(params.get("timeout") or 5)), max_age=max_age,
                                nonce=params.get("nonce"), now=now, clock_skew=params.get("clock_skew"))


def normalize_allowed(values):
    """Allow-list as compared with evidence: hex lowercased, surrounding blanks dropped."""
    if values is None:
        return None
    result = []
    for value in values:
        text = str(value).strip()
        if text.lower().startswith("0x"):
            text = text[2:]
        if text and all(c in "0123456789abcdefABCDEF" for c in text):
            text = text.lower()
        if text and text not in result:
            result.append(text)
    return result


def run(params: dict) -> tuple:
    """Attest what the parameters name. Returns ``(result, failure_message_or_None)``.

    Configuration errors raise InputError; evidence that is not verified never raises.
    """
    fmt = params.get("format")
    options = options_from_params(params)
    allowed = normalize_allowed(params.get("allowed_measurements"))
    timeout = float(params.get("timeout") or 5)
    if params.get("endpoints"):
        rows = attest_endpoints(params["endpoints"], fmt, options, allowed, workers=params.get("workers") or 16,
                                timeout=timeout, operation_purpose=params.get("operation_purpose") or DEFAULT_PURPOSE)
    elif params.get("document_path"):
        path = params["document_path"]
        try:
            with open(os.path.expanduser(path), "rb") as handle:
                data = handle.read(MAX_DOCUMENT_FILE_BYTES + 1)
        except OSError as exc:
            raise InputError("read", f"attestation document '{path}'", exc.strerror or exc.__class__.__name__) from None
        if len(data) > MAX_DOCUMENT_FILE_BYTES:
            raise InputError("read", f"attestation document '{path}'", f"it is larger than {MAX_DOCUMENT_FILE_BYTES} bytes")
        rows = [result_row(path, data, fmt, options, allowed)]
    else:
        rows = [result_row("document", params["document"], fmt, options, allowed)]

    measurements = sorted({row["measurement"] for row in rows if row["verified"] and row["measurement"]})
    result = {"results": rows, "measurements": measurements,
              "audit": audit.attestation(rows, measurements, params.get("operation_purpose"))}
    failed = [row for row in rows if not row["verified"]]
    if not failed:
        return result, None
    listed = "; ".join(f"{row['source']} ({row['reason']})" for row in failed[:20])
    more = f"; and {len(failed) - 20} more" if len(failed) > 20 else ""
    message = f"Could not verify attestation evidence of {len(failed)} of {len(rows)} sources: {listed}{more}"
    return result, message


__all__ = ["attest_endpoint", "attest_endpoints", "fetch_evidence", "healthz", "http_request", "new_session",
           "options_from_params", "run", "digest"]

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import audit
