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
- ``timeout`` is one deadline for the whole exchange (connecting, sending, the status line and
  headers, the body), not a per-read timeout that a server dripping one byte at a time resets
  forever: a watchdog thread per session shuts down the socket of a request that outlives it;
- a URL the environment sends through a proxy (``HTTP(S)_PROXY``, ``ALL_PROXY``, ``NO_PROXY``)
  goes through ``requests`` exactly as before.
"""

from __future__ import annotations

import base64
import heapq
import http.client
import itertools
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
_RECHECK = 0.05  # seconds between the watchdog's looks at a connection past its deadline that is still connecting
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


class _Watchdog:
    """Shuts down the socket of a request that outlives its deadline (one thread per Session, started on first use).

    http.client's timeouts bound each read, so a server that sends its status line and headers one
    byte at a time, each within the timeout, could hold a request forever (about 100 header lines
    of 64 KiB). Shutting the socket down from this thread wakes the blocked read at once.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._armed = {}   # token -> connection
        self._heap = []    # (deadline, token); disarmed tokens are dropped when they come up
        self._tokens = itertools.count()
        self._thread = None
        self._stopped = False

    def arm(self, conn, deadline: float) -> int:
        with self._cond:
            token = next(self._tokens)
            self._armed[token] = conn
            earliest = not self._heap or deadline < self._heap[0][0]
            heapq.heappush(self._heap, (deadline, token))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="attest-deadline", daemon=True)
                self._thread.start()
            elif earliest:
                self._cond.notify()
        return token

    def disarm(self, token: int) -> bool:
        """False when the deadline had passed and the socket was shut down."""
        with self._cond:
            return self._armed.pop(token, None) is not None

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                while self._heap and self._heap[0][1] not in self._armed:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                _deadline, token = heapq.heappop(self._heap)
                if self._armed[token].sock is None:
                    # Still connecting (bounded by the connect timeout): cut it as soon as it is connected.
                    heapq.heappush(self._heap, (time.monotonic() + _RECHECK, token))
                    continue
                _cut(self._armed.pop(token).sock)


def _cut(sock) -> None:
    try:
        # socket.socket's shutdown, not SSLSocket's, which would also drop the TLS object under the
        # reading thread's feet: the blocked read sees the end of the stream and fails.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class Session:
    """Kept-alive connections per origin, shared by the threads of one attestation call."""

    def __init__(self):
        self._watchdog = _Watchdog()
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
        self._watchdog.stop()
        if self.proxied is not None:
            self.proxied.close()

    def request(self, method: str, url: str, timeout: float, max_bytes: int, json_body=None, params=None) -> tuple:
        """``(status, content_type, body)``; raise FetchError. ``timeout`` bounds the whole exchange (one deadline)."""
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
        late = FetchError(f"did not answer within {timeout:g}s (timeout)")
        conn = self._take(origin, timeout)
        token = self._watchdog.arm(conn, deadline)
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
                    raise late
                chunks.append(chunk)
            if not self._watchdog.disarm(token):
                raise late  # the end of the stream the watchdog caused is no answer
        except Exception as exc:  # pylint: disable=broad-exception-caught
            self._watchdog.disarm(token)
            conn.close()
            raise _fetch_error(exc, late, deadline) from None
        if response.will_close:
            conn.close()
        else:
            self._give_back(origin, conn)
        return status, ctype, b"".join(chunks)


def _fetch_error(exc: Exception, late: FetchError, deadline: float) -> Exception:
    """What to raise for a failed exchange: the FetchError naming its cause, else ``exc`` itself."""
    if isinstance(exc, FetchError):
        return exc
    if isinstance(exc, (socket.timeout, TimeoutError)) or time.monotonic() >= deadline:
        return late  # a read timeout, or whatever the watchdog's shutdown made the read raise
    if isinstance(exc, ConnectionRefusedError):
        return FetchError("refused the connection")
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, http.client.RemoteDisconnected)):
        return FetchError("reset the connection")
    if isinstance(exc, ssl.SSLError):
        return FetchError(f"could not be fetched ({exc.__class__.__name__}: {exc.reason or 'TLS failure'})")
    if isinstance(exc, OSError):
        return FetchError("could not be reached (connection error)")
    if isinstance(exc, (http.client.HTTPException, ValueError)):
        return FetchError(f"could not be fetched ({exc.__class__.__name__})")
    return exc
