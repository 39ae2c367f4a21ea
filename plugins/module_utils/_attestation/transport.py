# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP/1.1 requests to enclave endpoints over kept-alive connections, on the standard library.

Private module_utils: the API may change without notice between releases.

Attesting a fleet is hundreds of small requests. Through ``requests`` each one costs about a
millisecond of Python on the controller (preparing the request, reading proxy settings from the
environment, building the response), more than verifying the evidence, and importing
``requests`` costs about 50 ms per Ansible task. ``Session`` sends them with ``http.client``
instead, on a pool of kept-alive connections shared by the threads of one attestation call,
and keeps what ``requests`` did for these endpoints:

- TLS verified against ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` when set, else certifi's bundle
  (when installed), else the system's; the host name is checked;
- credentials in the URL (``https://user:pw@host/``) are sent as Basic authentication;
- no redirects are followed, nothing is retried (a connection the server closed while it was
  idle is detected before it is reused, as urllib3 does);
- a URL the environment sends through a proxy (``HTTP(S)_PROXY``, ``ALL_PROXY``, ``NO_PROXY``)
  goes through ``requests`` exactly as before.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import select
import socket
import ssl
import threading
import time
import urllib.request
from urllib.parse import quote, unquote, urlencode, urlsplit

USER_AGENT = "alfred.tee_kms-attestation"
_READ_CHUNK = 64 * 1024
# requests' requote_uri keeps these as they are in a path.
_PATH_SAFE = "!#$%&'()*+,/:;=?@[]~"


class FetchError(Exception):
    """A request could not be completed; ``cause`` completes "<host:port> <cause>"."""

    def __init__(self, cause: str):
        self.cause = cause
        super().__init__(cause)


def may_use_proxy(url: str, proxies: dict) -> bool:
    """False when requests would certainly send ``url`` directly with these environment ``proxies``.

    Deciding "proxy" wrongly only hands the URL to requests, which decides again (CIDR entries of
    NO_PROXY included); deciding "direct" wrongly would bypass a proxy, so it is never guessed:
    requests itself sends a URL directly whenever urllib's bypass test says so.
    """
    parts = urlsplit(url)
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    host = parts.hostname or ""
    return not (urllib.request.proxy_bypass_environment(host, proxies)
                or urllib.request.proxy_bypass_environment(parts.netloc.rsplit("@", 1)[-1], proxies))


def _ca_file():
    """The CA bundle requests verifies with: the environment's, else certifi's, else None (the system's)."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        import certifi
    except ImportError:
        return None
    return certifi.where()


class _Connection(http.client.HTTPConnection):
    def connect(self):
        super().connect()
        # The request line and headers, then the body, go out as two writes: without TCP_NODELAY the
        # body can wait for the acknowledgement of the headers (urllib3 sets it too).
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _TlsConnection(http.client.HTTPSConnection):
    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _dropped(conn) -> bool:
    """An idle kept-alive connection the server closed (or sent something unasked on) is not reused."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _w, _x = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class Session:
    """Kept-alive connections per origin, shared by the threads of one attestation call."""

    def __init__(self):
        self._idle = {}
        self._lock = threading.Lock()
        self._context = None
        self._closed = False
        # Read once: scanning the environment for every request was a large part of requests' cost.
        self.proxies = urllib.request.getproxies_environment()
        self.proxied = None  # the requests Session of the URLs a proxy may serve, made when one is met

    def may_use_proxy(self, url: str) -> bool:
        return bool(self.proxies) and may_use_proxy(url, self.proxies)

    def proxied_session(self, make):
        """The session ``make()`` builds for proxied URLs, made once and closed with this one."""
        with self._lock:
            if self.proxied is None:
                self.proxied = make()
            return self.proxied

    def _tls(self):
        with self._lock:
            if self._context is None:
                self._context = ssl.create_default_context(cafile=_ca_file())
            return self._context

    def _take(self, origin, timeout: float):
        with self._lock:
            idle = self._idle.get(origin) or []
            while idle:
                conn = idle.pop()
                if not _dropped(conn):
                    conn.timeout = timeout
                    conn.sock.settimeout(timeout)
                    return conn
                conn.close()
        scheme, host, port = origin
        if scheme == "https":
            return _TlsConnection(host, port, timeout=timeout, context=self._tls())
        return _Connection(host, port, timeout=timeout)

    def _give_back(self, origin, conn) -> None:
        with self._lock:
            if self._closed:
                conn.close()
            else:
                self._idle.setdefault(origin, []).append(conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()
        if self.proxied is not None:
            self.proxied.close()

    def request(self, method: str, url: str, timeout: float, max_bytes: int, json_body=None, params=None) -> tuple:
        """``(status, content_type, body)``; raise FetchError. ``timeout`` bounds connecting, each read and the whole body."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchError(f"could not be fetched (unsupported URL {parts.scheme or 'without a scheme'})")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise FetchError("could not be fetched (invalid port)") from None
        target = quote(parts.path or "/", safe=_PATH_SAFE)
        query = "&".join(q for q in (parts.query, urlencode(params) if params else "") if q)
        if query:
            target += "?" + query
        headers = {"User-Agent": USER_AGENT, "Accept": "*/*", "Accept-Encoding": "identity"}
        if parts.username is not None:
            userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode("latin-1", "replace")
            headers["Authorization"] = "Basic " + base64.b64encode(userinfo).decode("ascii")
        body = None
        if json_body is not None:
            body = json.dumps(json_body, allow_nan=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        origin = (parts.scheme, parts.hostname, port)
        deadline = time.monotonic() + timeout
        conn = self._take(origin, timeout)
        try:
            conn.request(method, target, body=body, headers=headers)
            response = conn.getresponse()
            status, ctype = response.status, response.getheader("Content-Type", "")
            chunks, size = [], 0
            while True:
                chunk = response.read1(_READ_CHUNK)  # what has arrived: the deadline is checked between reads
                if not chunk:
                    response.read()  # marks the body as read, so the connection can carry the next request
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(f"answered more than {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise FetchError(f"did not answer within {timeout:g}s (timeout)")
                chunks.append(chunk)
        except FetchError:
            conn.close()
            raise
        except (socket.timeout, TimeoutError):
            conn.close()
            raise FetchError(f"did not answer within {timeout:g}s (timeout)") from None
        except ConnectionRefusedError:
            conn.close()
            raise FetchError("refused the connection") from None
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, http.client.RemoteDisconnected):
            conn.close()
            raise FetchError("reset the connection") from None
        except ssl.SSLError as exc:
            conn.close()
            raise FetchError(f"could not be fetched ({exc.__class__.__name__}: {exc.reason or 'TLS failure'})") from None
        except OSError:
            conn.close()
            raise FetchError("could not be reached (connection error)") from None
        except (http.client.HTTPException, ValueError) as exc:
            conn.close()
            raise FetchError(f"could not be fetched ({exc.__class__.__name__})") from None
        if response.will_close:
            conn.close()
        else:
            self._give_back(origin, conn)
        return status, ctype, b"".join(chunks)
