"""HTTP front of the simulator: many enclaves in one ThreadingHTTPServer, routed by URL prefix.

Enclave NAME lives under /enclaves/NAME; a single-enclave process also answers at the root.
Behaviour per enclave is driven by its mode (see MODES) and can change at run time through
/_sim/config, which is deliberately exempt from the modes so a `down` enclave can be revived.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
import secrets
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from alfred_evidence import ChallengeError, build_evidence, parse_challenge
from jwt_token import JwtIssuer
from kms_canary import CANARY_PATH, CanaryError, kms_client, parse_request, recipient_key, run_canary, warm_up
from nitro_document import NitroDocumentIssuer, pcr0_for
from sim_trust import JWT_LOGIN_AUDIENCE, TrustMaterial
from vault_canary import is_vault_ciphertext, run_vault_canary

DEFAULT_RUNTIME = "alfred-enclave-runtime/sim"
DEFAULT_SLOW_SECONDS = 5.0
MAX_SLOW_SECONDS = 600.0
MODES = ("ok", "down", "slow", "bad-signature", "stale", "wrong-nonce", "debug")
STALE_SECONDS = 2 * 3600
DEBUG_MEASUREMENT = "0" * 96
ENCLAVE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DOCUMENT_FORMATS = ("alfred", "nitro", "jwt")
MAX_NONCE_BYTES = 1024  # the genuine AWS vectors carry a 1024-byte nonce
MAX_BODY_BYTES = 64 * 1024
# Lifetime of the login tokens an enclave mints for its own Vault login: what a captured one is
# worth. The JWT role allows no leeway beyond a few seconds of clock skew (docs/providers/vault.md).
LOGIN_TOKEN_SECONDS = 30
CONFIG_KEYS = ("mode", "measurement", "slow_seconds", "runtime", "canary", "login_token_seconds")


class ConfigError(ValueError):
    """Invalid enclave configuration (fleet file, CLI or /_sim/config): message is user-facing."""


def _check_label(what: str, value, *, max_len: int) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{what} must be a non-empty string")
    if len(value) > max_len:
        raise ConfigError(f"{what} is longer than {max_len} characters")
    # '|' would make the alfred signing string ambiguous; control characters break logs.
    if "|" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ConfigError(f"{what} must not contain '|' or control characters")
    return value


@dataclasses.dataclass(frozen=True)
class EnclaveConfig:
    measurement: str
    mode: str = "ok"
    slow_seconds: float = DEFAULT_SLOW_SECONDS
    runtime: str = DEFAULT_RUNTIME
    # Serves the canary endpoint (an enclave runtime without it answers 404 there).
    canary: bool = True
    # Lifetime of this enclave's Vault login tokens; None: the simulator's --login-token-seconds.
    login_token_seconds: int | None = None

    def __post_init__(self) -> None:
        # Any value is allowed as long as it can be served: verifiers must be able to see
        # odd measurements (uppercase hex, dev markers) and refuse them themselves.
        _check_label("measurement", self.measurement, max_len=1024)
        _check_label("runtime", self.runtime, max_len=256)
        if self.mode not in MODES:
            raise ConfigError(f"mode {self.mode!r} is unknown; use one of {', '.join(MODES)}")
        slow = self.slow_seconds
        if isinstance(slow, bool) or not isinstance(slow, (int, float)) or not 0 <= slow <= MAX_SLOW_SECONDS:
            raise ConfigError(f"slow_seconds must be a number between 0 and {MAX_SLOW_SECONDS:g}")
        if not isinstance(self.canary, bool):
            raise ConfigError("canary must be true or false")
        seconds = self.login_token_seconds
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= 3600):
            raise ConfigError("login_token_seconds must be a whole number of seconds between 1 and 3600")

    def public(self) -> dict:
        return {"measurement": self.measurement, "mode": self.mode,
                "slow_seconds": self.slow_seconds, "runtime": self.runtime, "canary": self.canary,
                "login_token_seconds": self.login_token_seconds,
                "pcr0": pcr0_for(self.measurement).hex()}


class Enclave:
    """One simulated enclave; its config is an immutable snapshot swapped under a lock."""

    def __init__(self, name: str, config: EnclaveConfig) -> None:
        if not ENCLAVE_NAME_RE.match(name or ""):
            raise ConfigError(f"enclave name {name!r} must match {ENCLAVE_NAME_RE.pattern}")
        self.name = name
        self._config = config
        self._lock = threading.Lock()

    @property
    def config(self) -> EnclaveConfig:
        return self._config

    def update(self, changes) -> EnclaveConfig:
        if not isinstance(changes, dict):
            raise ConfigError("config body must be a JSON object")
        unknown = sorted(set(changes) - set(CONFIG_KEYS))
        if unknown:
            raise ConfigError(f"unknown config keys {unknown}; allowed: {', '.join(CONFIG_KEYS)}")
        with self._lock:
            self._config = dataclasses.replace(self._config, **changes)
            return self._config


def _wrong_hex(nonce_hex: str | None) -> str:
    """A well-formed nonce of the same size that is certainly not the one asked for."""
    size = len(nonce_hex) // 2 if nonce_hex else 32
    while True:
        candidate = secrets.token_hex(max(size, 1))
        if candidate != (nonce_hex or "").lower():
            return candidate


class Simulator:
    """All enclaves of one process plus the trust material and issuers they share."""

    def __init__(self, enclaves: list[Enclave], *, default_name: str | None = None,
                 trust: TrustMaterial | None = None, verbose: bool = False,
                 kms_endpoint: str | None = None, kms_region: str | None = None,
                 vault_addr: str | None = None, login_token_seconds: int = LOGIN_TOKEN_SECONDS) -> None:
        self.enclaves = {}
        for enclave in enclaves:
            if enclave.name in self.enclaves:
                raise ConfigError(f"enclave name {enclave.name!r} appears twice")
            self.enclaves[enclave.name] = enclave
        if not self.enclaves:
            raise ConfigError("at least one enclave is required")
        self.default_enclave = self.enclaves[default_name] if default_name else None
        self.trust = trust or TrustMaterial()
        self.nitro = NitroDocumentIssuer(self.trust)
        self.jwt: JwtIssuer | None = None  # needs base_url, known once the socket is bound
        self.verbose = verbose
        # The KMS the enclaves decrypt through (the canary endpoint); credentials come from
        # the standard AWS environment of this process, as the parent instance's role would.
        self.kms_endpoint = kms_endpoint
        self.kms_region = kms_region
        # A Vault/OpenBao Transit KMS: the enclaves log in to it with login tokens they mint
        # themselves (never served on any endpoint) and decrypt Transit ciphertexts.
        self.vault_addr = vault_addr
        self.login_token_seconds = login_token_seconds
        warm_up()
        self._kms = None
        self.server: ThreadingHTTPServer | None = None
        self.base_url = ""

    # -- lifecycle -------------------------------------------------------------------------
    def bind(self, host: str, port: int) -> ThreadingHTTPServer:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_cls = type("SimHTTPServer", (ThreadingHTTPServer,), {
            "address_family": family,
            "daemon_threads": True,       # an open keep-alive connection must not block exit
            "request_queue_size": 1024,   # benchmarks open hundreds of connections at once
            "allow_reuse_address": True,
        })
        self.server = server_cls((host, port), SimRequestHandler)
        self.server.simulator = self
        bound_port = self.server.server_address[1]
        shown_host = f"[{host}]" if family == socket.AF_INET6 else host
        self.base_url = f"http://{shown_host}:{bound_port}"
        self.jwt = JwtIssuer(self.trust, issuer=self.base_url)
        return self.server

    def enclave_url(self, name: str) -> str:
        return f"{self.base_url}/enclaves/{name}"

    def ready_document(self, pid: int) -> dict:
        enclaves = {}
        for name, enclave in self.enclaves.items():
            entry = {"url": self.enclave_url(name)}
            entry.update(enclave.config.public())
            enclaves[name] = entry
        doc = {"pid": pid, "port": self.server.server_address[1], "base_url": self.base_url,
               "enclaves": enclaves}
        if self.default_enclave is not None:
            doc["default_enclave"] = self.default_enclave.name
        return doc

    # -- evidence --------------------------------------------------------------------------
    def alfred_evidence(self, cfg: EnclaveConfig, challenge: dict) -> dict:
        now = int(time.time())
        if cfg.mode == "wrong-nonce":
            challenge = dict(challenge, challenge_nonce=_wrong_hex(
                challenge["challenge_nonce"] if _is_hex(challenge["challenge_nonce"]) else None))
        return build_evidence(
            challenge,
            runtime=cfg.runtime,
            measurement=DEBUG_MEASUREMENT if cfg.mode == "debug" else cfg.measurement,
            evidence_issued_at=now - STALE_SECONDS if cfg.mode == "stale" else now,
            key=self.trust.rogue_alfred_key if cfg.mode == "bad-signature" else self.trust.alfred_key,
        )

    def nitro_document(self, enclave: Enclave, cfg: EnclaveConfig, nonce_hex: str | None,
                       public_key: bytes | None = None) -> bytes:
        """A Nitro document; like the NSM, every document carries a fresh RSA public key (its
        private half stays with whoever asked: here nobody, for the canary the canary flow)."""
        now_ms = int(time.time() * 1000)
        if cfg.mode == "wrong-nonce":
            nonce_hex = _wrong_hex(nonce_hex)
        if public_key is None:
            dummy, public_key = recipient_key()
        return self.nitro.build(
            public_key=public_key,
            enclave_name=enclave.name,
            measurement=cfg.measurement,
            timestamp_ms=now_ms - STALE_SECONDS * 1000 if cfg.mode == "stale" else now_ms,
            nonce=bytes.fromhex(nonce_hex) if nonce_hex is not None else None,
            debug=cfg.mode == "debug",
            rogue_signature=cfg.mode == "bad-signature",
        )

    def kms_canary(self, enclave: Enclave, cfg: EnclaveConfig, body) -> dict:
        parse_request(body)  # a request that is not a canary is refused before any KMS is asked
        if is_vault_ciphertext(_blob_of(body)):
            return self.vault_canary(enclave, cfg, body)
        if not self.kms_endpoint:
            raise CanaryError(503, "this simulator was started without --kms-endpoint")
        if self._kms is None:
            self._kms = kms_client(self.kms_endpoint, self.kms_region)
        wrong = bytes.fromhex(_wrong_hex(None)) if cfg.mode == "wrong-nonce" else None
        # The document's own nonce stays honest in wrong-nonce mode: only the proof is off.
        honest = dataclasses.replace(cfg, mode="ok") if cfg.mode == "wrong-nonce" else cfg
        return run_canary(self._kms, lambda public_der, nonce: self.nitro_document(enclave, honest, nonce.hex(), public_der),
                          body, proof_nonce=wrong)

    def vault_canary(self, enclave: Enclave, cfg: EnclaveConfig, body) -> dict:
        if not self.vault_addr:
            raise CanaryError(503, "this simulator was started without --vault-addr")
        wrong = bytes.fromhex(_wrong_hex(None)) if cfg.mode == "wrong-nonce" else None
        return run_vault_canary(self.vault_addr, lambda key_id: self.login_token(enclave, cfg), body, proof_nonce=wrong)

    def login_token(self, enclave: Enclave, cfg: EnclaveConfig) -> str:
        """The enclave's own login token: the login audience, a fresh nonce, a short life."""
        now = int(time.time())
        return self.jwt.build(
            enclave_name=enclave.name,
            measurement=DEBUG_MEASUREMENT if cfg.mode == "debug" else cfg.measurement,
            issued_at=now - STALE_SECONDS if cfg.mode == "stale" else now,
            nonce=secrets.token_hex(32),
            alg=self.jwt.pick_alg(None),
            rogue_signature=cfg.mode == "bad-signature",
            audience=JWT_LOGIN_AUDIENCE,
            lifetime=cfg.login_token_seconds or self.login_token_seconds,
        )

    def jwt_token(self, enclave: Enclave, cfg: EnclaveConfig, nonce_hex: str | None,
                  alg: str | None) -> str:
        now = int(time.time())
        if cfg.mode == "wrong-nonce":
            nonce_hex = _wrong_hex(nonce_hex)
        return self.jwt.build(
            enclave_name=enclave.name,
            measurement=DEBUG_MEASUREMENT if cfg.mode == "debug" else cfg.measurement,
            issued_at=now - STALE_SECONDS if cfg.mode == "stale" else now,
            nonce=nonce_hex,
            alg=self.jwt.pick_alg(alg),
            rogue_signature=cfg.mode == "bad-signature",
        )


def _blob_of(body) -> bytes:
    """The canary request's ciphertext bytes, or b"" (parse_request then names what is wrong)."""
    try:
        return base64.b64decode(body.get("ciphertext_blob") or "", validate=True) if isinstance(body, dict) else b""
    except (binascii.Error, ValueError, TypeError):
        return b""


def _is_hex(value: str) -> bool:
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return len(value) % 2 == 0


class _HttpError(Exception):
    def __init__(self, status: int, message: str, *, allow: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.allow = allow


class SimRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: benchmarks reuse connections
    # Small answers on a kept-alive connection would otherwise wait ~40 ms for the client's
    # delayed ACK (Nagle), which dominated every attestation round trip.
    disable_nagle_algorithm = True
    server_version = "alfred-enclave-sim/1"

    @property
    def sim(self) -> Simulator:
        return self.server.simulator

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    # -- plumbing --------------------------------------------------------------------------
    def log_message(self, format, *args) -> None:  # noqa: A002 - signature of the base class
        if self.sim.verbose:
            sys.stderr.write("enclave-sim: %s %s\n" % (self.address_string(), format % args))

    def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. timed out on `slow`)

    def _send_json(self, status: int, obj, extra: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode("utf-8"), "application/json", extra)

    def _read_body(self) -> None:
        """Consume the request body before routing.

        Every answer, errors included, must leave a keep-alive connection at the next request;
        an unread body would be parsed as one (clients with pooled sessions then see 400s).
        """
        self._body = b""
        self._body_error = None
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            if "Transfer-Encoding" in self.headers:
                self.close_connection = True  # chunked bodies are not supported; do not reuse
            return
        try:
            length = int(length_header)
        except ValueError:
            self.close_connection = True
            self._body_error = _HttpError(400, "Content-Length is not an integer")
            return
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True  # too big to drain: drop the connection instead
            self._body_error = _HttpError(413, f"body larger than {MAX_BODY_BYTES} bytes")
            return
        self._body = self.rfile.read(length)

    def _read_json(self):
        if self._body_error is not None:
            raise self._body_error
        if "Content-Length" not in self.headers:
            raise _HttpError(411, "a JSON body with Content-Length is required")
        try:
            return json.loads(self._body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _HttpError(400, f"body is not valid JSON: {exc}") from None

    def _dispatch(self, method: str) -> None:
        try:
            self._read_body()
            self._route(method)
        except _HttpError as exc:
            extra = {"Allow": exc.allow} if exc.allow else None
            self._send_json(exc.status, {"error": str(exc)}, extra)
        except Exception:  # noqa: BLE001 - a bug must answer 500, not kill the connection silently
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            self._send_json(500, {"error": "internal simulator error (see simulator stderr)"})

    def _route(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query, keep_blank_values=True)
        if path == "/.well-known/jwks.json":
            self._require(method, "GET")
            return self._send_json(200, self.sim.trust.jwks)
        if path.startswith("/enclaves/"):
            name, _, rest = path[len("/enclaves/"):].partition("/")
            enclave = self.sim.enclaves.get(name)
            if enclave is None:
                raise _HttpError(404, f"no enclave named {name!r} in this simulator")
            sub = "/" + rest
        elif self.sim.default_enclave is not None:
            enclave, sub = self.sim.default_enclave, path
        else:
            raise _HttpError(404, f"no route for {path!r}; enclaves are served under /enclaves/NAME")

        if sub == "/_sim/config":
            return self._config(method, enclave)
        routes = {
            "/healthz": ("GET", self._healthz),
            "/v1/attestation/challenge": ("POST", self._challenge),
            "/v1/attestation/document": ("GET", self._document),
            CANARY_PATH: ("POST", self._canary),
        }
        if sub not in routes:
            raise _HttpError(404, f"no route for {sub!r} on enclave {enclave.name!r}")
        wanted, handler = routes[sub]
        self._require(method, wanted)
        cfg = enclave.config  # one snapshot for the whole request, even if reconfigured meanwhile
        if cfg.mode == "down":
            if sub == "/healthz":
                return self._send_json(503, {"status": "down"})
            raise _HttpError(503, f"enclave {enclave.name!r} is down (simulated)")
        if cfg.mode == "slow":
            time.sleep(cfg.slow_seconds)
        handler(enclave, cfg, query)

    @staticmethod
    def _require(method: str, wanted: str) -> None:
        if method != wanted:
            raise _HttpError(405, f"method {method} not allowed; use {wanted}", allow=wanted)

    # -- endpoints -------------------------------------------------------------------------
    def _config(self, method: str, enclave: Enclave) -> None:
        if method == "GET":
            return self._send_json(200, {"name": enclave.name, **enclave.config.public()})
        self._require(method, "POST")
        changes = self._read_json()
        try:
            cfg = enclave.update(changes)
        except (ConfigError, TypeError) as exc:
            raise _HttpError(400, f"could not reconfigure enclave {enclave.name!r}: {exc}") from None
        sys.stderr.write(f"enclave-sim: enclave {enclave.name!r} now mode={cfg.mode}\n")
        self._send_json(200, {"name": enclave.name, **cfg.public()})

    def _healthz(self, enclave: Enclave, cfg: EnclaveConfig, query) -> None:
        self._send_json(200, {"status": "ok"})

    def _challenge(self, enclave: Enclave, cfg: EnclaveConfig, query) -> None:
        try:
            challenge = parse_challenge(self._read_json(), now=int(time.time()))
        except ChallengeError as exc:
            raise _HttpError(400, f"malformed attestation challenge: {exc}") from None
        self._send_json(200, self.sim.alfred_evidence(cfg, challenge))

    def _canary(self, enclave: Enclave, cfg: EnclaveConfig, query) -> None:
        if not cfg.canary:
            raise _HttpError(404, f"enclave {enclave.name!r} has no canary endpoint (canary disabled)")
        try:
            answer = self.sim.kms_canary(enclave, cfg, self._read_json())
        except CanaryError as exc:
            body = {"error": str(exc)}
            if exc.code:
                body["kms_error"] = exc.code
            return self._send_json(exc.status, body)
        self._send_json(200, answer)

    def _document(self, enclave: Enclave, cfg: EnclaveConfig, query) -> None:
        fmt = _single(query, "format") or "alfred"
        if fmt not in DOCUMENT_FORMATS:
            raise _HttpError(400, f"format {fmt!r} is unknown; use one of {', '.join(DOCUMENT_FORMATS)}")
        nonce = _single(query, "nonce")
        if nonce is not None:
            if not nonce or not _is_hex(nonce) or len(nonce) > 2 * MAX_NONCE_BYTES:
                raise _HttpError(400, f"nonce must be non-empty hex of at most {MAX_NONCE_BYTES} bytes")
        if fmt == "nitro":
            body = self.sim.nitro_document(enclave, cfg, nonce)
            return self._send(200, body, "application/cbor")
        if fmt == "jwt":
            try:
                token = self.sim.jwt_token(enclave, cfg, nonce, _single(query, "alg"))
            except ValueError as exc:
                raise _HttpError(400, str(exc)) from None
            return self._send(200, token.encode("ascii"), "application/jwt")
        now = int(time.time())
        challenge = {
            "challenge_nonce": nonce if nonce is not None else secrets.token_hex(32),
            "issued_at": now,
            "expires_at": now + 300,
            "operation_purpose": "attestation-document",
            "request_id": "doc-" + secrets.token_hex(8),
        }
        self._send_json(200, self.sim.alfred_evidence(cfg, challenge))


def _single(query: dict, key: str) -> str | None:
    values = query.get(key)
    if not values:
        return None
    if len(values) > 1:
        raise _HttpError(400, f"query parameter {key!r} given more than once")
    return values[0]
