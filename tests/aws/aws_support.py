# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for the provider=aws tests: a real moto server process on loopback, a fault
injecting proxy in front of it, and a runner that executes the real modules as processes."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from module_process import run_module_process

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / ".collections"
MODULES = REPO / "plugins" / "modules"
UNIT_LIB = REPO / "tests" / "unit" / "plugins" / "module_utils"
for extra in (str(COLLECTIONS), str(UNIT_LIB)):
    if extra not in sys.path:
        sys.path.insert(0, extra)

REGION = "us-east-1"
M1 = hashlib.sha384(b"enclave-image-1").hexdigest()
M2 = hashlib.sha384(b"enclave-image-2").hexdigest()
M3 = hashlib.sha384(b"enclave-image-3").hexdigest()
SECRET = "SecretKeyValueThatMustNeverBePrinted0123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def moto_binary() -> str:
    candidate = Path(sys.executable).with_name("moto_server")
    return str(candidate) if candidate.exists() else "moto_server"


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as handle:
        proc = subprocess.Popen([moto_binary(), "-H", "127.0.0.1", "-p", str(port)], stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"moto_server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


# --------------------------------------------------------------------------- fault proxy

class LoopbackFront:
    """A threaded HTTP server on a free loopback port in front of moto; ``url`` for clients."""

    def serve(self, handler) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class KmsFrontHandler(BaseHTTPRequestHandler):
    """What every loopback front of moto shares: keep-alive, quiet, answers relayed as-is."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def relay(self, status: int, headers, data: bytes):
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error_reply(self, status: int, code: str, message: str):
        self.relay(status, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)],
                   json.dumps({"__type": code, "message": message}).encode())


class FaultProxy(LoopbackFront):
    """Loopback HTTP proxy to moto. ``add(target, fault, times)`` injects faults for requests
    whose X-Amz-Target ends with ``target`` (``*`` for all): ``throttle`` (400
    ThrottlingException), ``error500``, ``drop`` (close without answering, request not
    forwarded), ``drop_after`` (forward, then close without answering: the call happened but
    the client cannot know). ``down = True`` drops everything, like a stopped server."""

    def __init__(self, upstream: str):
        self.upstream = upstream.replace("http://", "")
        self.rules = []
        self.seen = []
        self.down = False
        self.lock = threading.Lock()
        proxy = self

        class Handler(KmsFrontHandler):
            def do_POST(self):
                body = self.read_body()
                fault = proxy._fault(self.headers.get("X-Amz-Target", ""))
                if fault in ("drop", "down"):
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault == "throttle":
                    return self.error_reply(400, "ThrottlingException", "Rate exceeded")
                if fault == "error500":
                    return self.error_reply(500, "KMSInternalException", "injected internal error")
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request("POST", self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                if fault == "drop_after":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.relay(answer.status, answer.getheaders(), data)

            do_GET = do_POST

        self.serve(Handler)

    def _fault(self, target: str):
        with self.lock:
            self.seen.append(target.split(".")[-1])
            if self.down:
                return "down"
            for rule in self.rules:
                if rule["times"] and (rule["target"] == "*" or target.endswith("." + rule["target"])):
                    if rule["skip"]:
                        rule["skip"] -= 1
                        continue
                    rule["times"] -= 1
                    rule["hits"] += 1
                    return rule["fault"]
        return None

    def add(self, target: str, fault: str, times: int = 1, skip: int = 0) -> dict:
        """Inject ``fault`` into the next ``times`` matching requests after letting ``skip`` pass."""
        rule = {"target": target, "fault": fault, "times": times, "hits": 0, "skip": skip}
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self):
        with self.lock:
            self.rules.clear()
            self.seen.clear()
            self.down = False


@pytest.fixture
def proxy(moto_url):
    fault_proxy = FaultProxy(moto_url)
    yield fault_proxy
    fault_proxy.close()


# --------------------------------------------------------------------------- runners

def aws_env(extra=None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ANSIBLE_", "ALFRED_"))}
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": REGION,
                "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                "AWS_EC2_METADATA_DISABLED": "true", "PYTHONPATH": str(COLLECTIONS)})
    env.update(extra or {})
    return env


def run_module(name: str, args: dict, endpoint: str, check=False, diff=False, env=None, python_args=None, tmp_dir=None):
    """Run plugins/modules/<name>.py as its own process, as Ansible does on the target."""
    return run_module_process(name, {"provider": "aws", "endpoint_url": endpoint, **args}, aws_env(env),
                              check=check, diff=diff, python_args=python_args, tmp_dir=tmp_dir)


def new_alias() -> str:
    return f"alias/test/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def alias():
    return new_alias()


@pytest.fixture
def kms(moto_url):
    import boto3

    return boto3.client("kms", region_name=REGION, endpoint_url=moto_url,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def provider_for():
    from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.registry import build_provider

    def build(endpoint):
        return build_provider({"provider": "aws", "region": REGION, "endpoint_url": endpoint,
                               "access_key": "testing", "secret_key": SECRET, "validate_certs": True})
    return build


@pytest.fixture
def provider(provider_for, moto_url):
    return provider_for(moto_url)


def version_key_ids(kms_client, alias_name) -> dict:
    out = {}
    for entry in kms_client.list_aliases()["Aliases"]:
        name = entry["AliasName"]
        if name.startswith(alias_name + "/v"):
            out[int(name.rsplit("/v", 1)[1])] = entry["TargetKeyId"]
    return out


@pytest.fixture(scope="module")
def strict_kms(moto_url):
    """The strict KMS (strict_kms.py) in front of the session's moto; set_root() it before use."""
    from strict_kms import StrictKms

    server = StrictKms(moto_url)
    yield server
    server.close()
