# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Crash-safe single-file JSON store behind the ``local`` provider.

Private module_utils: the API may change without notice between releases.

Why it is built this way:
- Readers never take a lock: every write goes to a temporary file in the same directory,
  is fsync'ed and then atomically renamed over the store, so a reader sees the old or the
  new file, never a torn one. The directory is fsync'ed too so the rename survives a crash.
- Writers serialise on ``flock`` of a side file (``<store>.lock``); locking the store
  itself would not work because the rename replaces its inode.
- The document carries a SHA-256 of its canonical content: a hand-edited or damaged file
  is refused instead of being half-trusted.
- The file holds key material, so it must be a regular file of mode 0600; anything looser
  is refused rather than silently fixed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import stat
import time

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import StoreError

STORE_FORMAT = "alfred.tee_kms.local-store"
STORE_VERSION = 1
LOCK_TIMEOUT = 30.0


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class LocalStore:
    def __init__(self, path: str):
        self.path = os.path.abspath(os.path.expanduser(path))
        self.lock_path = self.path + ".lock"
        self.label = f"key store '{self.path}'"

    # --- reading ---------------------------------------------------------------------
    def exists(self) -> bool:
        return os.path.lexists(self.path)

    def read(self, action: str = "read") -> dict:
        """Return ``keys`` of the store ({} when the file does not exist yet)."""
        try:
            # O_NONBLOCK: opening a FIFO planted at the path must fail the type check below,
            # not block forever waiting for a writer. It changes nothing for regular files.
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StoreError(action, self.label, "it is a symbolic link; point store_path at the real file") from None
            raise StoreError(action, self.label, _os_cause(exc)) from None
        try:
            self._check_mode(os.fstat(fd), self.path, action)
            with os.fdopen(fd, "rb") as handle:
                fd = None
                data = handle.read()
        finally:
            if fd is not None:
                os.close(fd)
        return self._parse(data, action)

    def _parse(self, data: bytes, action: str) -> dict:
        if not data:
            raise StoreError(action, self.label, "the file is empty (truncated); restore it from a backup")
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise StoreError(action, self.label, "the file is not valid JSON (truncated or corrupted); restore it from a backup") from None
        if not isinstance(doc, dict) or doc.get("format") != STORE_FORMAT:
            raise StoreError(action, self.label, f"the file is not an {STORE_FORMAT} document")
        if doc.get("version") != STORE_VERSION:
            raise StoreError(action, self.label, f"store version {doc.get('version')!r} is not supported (expected {STORE_VERSION})")
        keys = doc.get("keys")
        if not isinstance(keys, dict) or doc.get("sha256") != hashlib.sha256(canonical(keys)).hexdigest():
            raise StoreError(action, self.label, "the content does not match its checksum (edited or damaged); restore it from a backup")
        return keys

    @staticmethod
    def _check_mode(st, path: str, action: str) -> None:
        if not stat.S_ISREG(st.st_mode):
            raise StoreError(action, f"key store '{path}'", "it is not a regular file")
        if st.st_mode & 0o077:
            raise StoreError(action, f"key store '{path}'",
                             f"its mode is {stat.S_IMODE(st.st_mode):04o} but key material needs 0600 (owner only); "
                             f"fix it with 'chmod 600 {path}' after checking who could read it")
        if st.st_uid != os.geteuid():
            raise StoreError(action, f"key store '{path}'", f"it belongs to uid {st.st_uid}, not to the current user (uid {os.geteuid()})")

    # --- writing ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self, action: str):
        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise StoreError(action, self.label, f"cannot open its lock file: {_os_cause(exc)}") from None
        try:
            self._check_mode(os.fstat(fd), self.lock_path, action)
            deadline = time.monotonic() + LOCK_TIMEOUT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                        raise StoreError(action, self.label, f"another process has held its write lock for over {LOCK_TIMEOUT:.0f}s") from None
                    time.sleep(0.01)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def mutate(self, action: str, change):
        """Run ``change(keys)`` under the write lock and persist it atomically.

        ``change`` mutates the dict in place and returns a value; if it raises, nothing is
        written. When the content did not change, the file is not rewritten.
        """
        with self._locked(action):
            keys = self.read(action)
            before = canonical(keys)
            result = change(keys)
            if canonical(keys) != before or not self.exists():
                self._write(keys, action)
            return result

    def _write(self, keys: dict, action: str) -> None:
        body = canonical(keys)
        doc = {"format": STORE_FORMAT, "version": STORE_VERSION, "sha256": hashlib.sha256(body).hexdigest(), "keys": keys}
        data = json.dumps(doc, sort_keys=True, indent=1, ensure_ascii=False).encode("utf-8") + b"\n"
        directory = os.path.dirname(self.path)
        self._remove_stale_temp_files(directory)
        tmp = os.path.join(directory, f"{self._tmp_prefix()}{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise StoreError(action, self.label, f"writing failed, the store is unchanged: {_os_cause(exc)}") from None

    def _tmp_prefix(self) -> str:
        return f".{os.path.basename(self.path)}."

    def _remove_stale_temp_files(self, directory: str) -> None:
        """Delete temporary files of writers that died before their rename.

        Called under the write lock: no live writer can own one, and each holds a copy of
        key material that must not linger next to the store.
        """
        pattern = re.compile(re.escape(self._tmp_prefix()) + r"[0-9]+\.[0-9a-f]{8}\.tmp")
        with contextlib.suppress(OSError):
            for name in os.listdir(directory):
                if pattern.fullmatch(name):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(directory, name))


def _os_cause(exc: OSError) -> str:
    return exc.strerror or exc.__class__.__name__
