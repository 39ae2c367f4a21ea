# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Connection to HashiCorp Vault / OpenBao for the ``vault`` provider: the hvac client, its
login (token or AppRole) and one place that turns hvac and transport errors into TeeKmsError.

Private module_utils: the API may change without notice between releases.
"""

from __future__ import annotations

import time

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import (
    AccessDeniedError,
    ConflictError,
    InputError,
    NotFoundError,
    ProviderError,
)

AUTH_METHODS = ("token", "approle")
# A sealed or standby server answers 503 and a throttled one 429 without acting on the
# request, so those are retried; a dropped connection is not (the write may have happened).
RETRY_STATUS = (429, 502, 503)
RETRIES = 3
RETRY_DELAY = 0.5
TIMEOUT = 30


def check_options(options: dict) -> None:
    """Refuse unusable connection options before anything is contacted."""
    obj = "the vault KMS provider"
    if not options.get("url"):
        raise InputError("use", obj, "url is required (or set VAULT_ADDR or BAO_ADDR)")
    if not str(options["url"]).startswith(("http://", "https://")):
        raise InputError("use", obj, f"url must start with http:// or https://, got '{options['url']}'")
    method = options.get("auth_method") or "token"
    if method not in AUTH_METHODS:
        raise InputError("use", obj, f"auth_method must be one of {', '.join(AUTH_METHODS)}, got '{method}'")
    if method == "token" and not options.get("token"):
        raise InputError("use", obj, "auth_method=token needs a token (or set VAULT_TOKEN or BAO_TOKEN)")
    if method == "approle" and not (options.get("role_id") and options.get("secret_id")):
        raise InputError("use", obj, "auth_method=approle needs role_id and secret_id")


class VaultSession:
    """One authenticated hvac client per provider, plus unauthenticated ones for callers
    that log in with their own evidence (the attested decrypt path)."""

    def __init__(self, options: dict):
        self.options = dict(options)
        self._client = None

    def where(self) -> str:
        namespace = self.options.get("namespace")
        return f"Vault at {self.options['url']}" + (f" (namespace {namespace})" if namespace else "")

    def new_client(self, token=None):
        import hvac

        verify = self.options.get("ca_cert") or self.options.get("vault_validate_certs", True)
        return hvac.Client(url=self.options["url"], token=token, namespace=self.options.get("namespace") or None,
                           verify=verify, timeout=TIMEOUT)

    def client(self):
        """The operator's client, logged in once (token as given, or an AppRole login)."""
        if self._client is None:
            if (self.options.get("auth_method") or "token") == "approle":
                client = self.new_client(token="")
                try:
                    answer = self.call(lambda: client.auth.approle.login(
                        role_id=self.options["role_id"], secret_id=self.options["secret_id"],
                        mount_point=self.options.get("approle_mount_point") or "approle"), "log in to", self.where())
                except (AccessDeniedError, InputError, ProviderError) as exc:
                    if "could not be reached" in exc.cause or "sealed" in exc.cause:
                        raise
                    raise AccessDeniedError("log in to", self.where(), f"the server refused the AppRole login ({exc.cause})") from None
                client.token = answer["auth"]["client_token"]
            else:
                client = self.new_client(self.options["token"])
            self._client = client
        return self._client

    def call(self, fn, action: str, obj: str, retry: bool = True):
        """Run ``fn()``; translate its failure. 429/502/503 are retried a few times."""
        import hvac.exceptions as hexc
        import requests

        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except hexc.VaultError as exc:
                status = getattr(exc, "status_code", None) or _status_of(exc)
                if retry and status in RETRY_STATUS and attempt < RETRIES:
                    time.sleep(RETRY_DELAY * attempt)
                    continue
                raise self.translate(exc, status, action, obj) from None
            except requests.exceptions.RequestException as exc:
                raise ProviderError(action, obj, f"{self.where()} could not be reached ({type(exc).__name__})") from None

    def translate(self, exc, status, action: str, obj: str):
        import hvac.exceptions as hexc

        detail = "; ".join(str(e) for e in (getattr(exc, "errors", None) or [])) or str(exc) or type(exc).__name__
        where = self.where()
        if isinstance(exc, hexc.InvalidPath) or status == 404:
            return NotFoundError(action, obj, f"{where} has no such path ({detail})")
        if isinstance(exc, (hexc.Forbidden, hexc.Unauthorized)) or status in (401, 403):
            return AccessDeniedError(action, obj, f"{where} refused it: {detail}")
        if isinstance(exc, hexc.VaultDown) or status == 503:
            return ProviderError(action, obj, f"{where} is sealed or unavailable (HTTP 503: {detail})")
        if "check-and-set" in detail:
            return ConflictError(action, obj, f"another writer changed it first ({detail})")
        return ProviderError(action, obj, f"{where} answered HTTP {status or '?'}: {detail}")


def _status_of(exc) -> int | None:
    import hvac.exceptions as hexc

    for cls, status in ((hexc.InvalidRequest, 400), (hexc.Unauthorized, 401), (hexc.Forbidden, 403),
                        (hexc.InvalidPath, 404), (hexc.RateLimitExceeded, 429), (hexc.InternalServerError, 500),
                        (hexc.BadGateway, 502), (hexc.VaultDown, 503)):
        if isinstance(exc, cls):
            return status
    return None
