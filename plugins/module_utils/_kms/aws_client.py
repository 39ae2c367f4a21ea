# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""AWS session, credentials, retries and error translation for the ``aws`` provider.

Private module_utils: the API may change without notice between releases.

Credentials and region follow amazon.aws: explicit module options win, then a named
profile, then the standard environment/instance chain of botocore. Throttling, 5xx answers
and dropped connections are retried by botocore's ``standard`` retry mode (exponential
backoff with jitter). Errors become TeeKmsError messages that never contain credentials.
"""

from __future__ import annotations

import os
import time

from ansible_collections.alfred.tee_kms.plugins.module_utils._common import deps
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import (
    AccessDeniedError,
    InputError,
    NotFoundError,
    ProviderError,
    TeeKmsError,
)
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.printable import escape_controls

# boto3 and botocore take about a second to import and every module loads this file (through
# the provider registry): they are imported when the first AWS session is built, not before.
boto3 = Config = None
BotoCoreError = ClientError = ProfileNotFound = ()  # nothing can be caught before (or without) the library


def _import_boto3() -> None:
    global boto3, Config, BotoCoreError, ClientError, ProfileNotFound  # pylint: disable=global-statement
    import boto3 as boto3_module
    from botocore.config import Config as config_class
    from botocore.exceptions import BotoCoreError as core_error, ClientError as client_error, ProfileNotFound as no_profile
    boto3, Config, BotoCoreError, ClientError, ProfileNotFound = boto3_module, config_class, core_error, client_error, no_profile


MAX_ATTEMPTS = 10
USER_AGENT = "alfred.tee_kms"


def require_boto3():
    deps.BOTO3.check("the AWS KMS provider")


def check_params(params: dict) -> None:
    """The options the AWS KMS provider cannot work without, checked before any call."""
    if not params.get("region"):
        raise InputError("use", "the AWS KMS provider", "region is required (set region, or AWS_REGION / AWS_DEFAULT_REGION)")
    if bool(params.get("access_key")) != bool(params.get("secret_key")):
        raise InputError("use", "the AWS KMS provider", "access_key and secret_key must be given together")


# Error codes that mean "the thing is not there".
NOT_FOUND_CODES = ("NotFoundException",)
DENIED_CODES = ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "UnrecognizedClientException",
                "InvalidClientTokenId", "ExpiredTokenException", "IncompleteSignature", "SignatureDoesNotMatch")


class AwsSession:
    """Builds the KMS and STS clients once, with retries and the configured endpoint."""

    def __init__(self, params: dict):
        require_boto3()
        _import_boto3()
        check_params(params)
        self.region = params.get("region")
        # Values that must never appear in a message, even if an error echoes them.
        self._secrets = [v for v in (params.get("secret_key"), params.get("session_token")) if v]
        self.endpoint_url = params.get("endpoint_url") or None
        kwargs = {"region_name": self.region}
        if params.get("access_key") and params.get("secret_key"):
            kwargs.update(aws_access_key_id=params["access_key"], aws_secret_access_key=params["secret_key"],
                          aws_session_token=params.get("session_token") or None)
        elif params.get("profile"):
            kwargs["profile_name"] = params["profile"]
        try:
            self.session = boto3.session.Session(**kwargs)
        except ProfileNotFound:
            raise InputError("use", "the AWS KMS provider", f"the AWS profile '{params['profile']}' does not exist") from None
        verify = params.get("aws_ca_bundle") or None
        if params.get("validate_certs") is False:
            verify = False
        self.config = Config(retries={"mode": "standard", "total_max_attempts": max_attempts()},
                             connect_timeout=10, read_timeout=30, user_agent_extra=USER_AGENT)
        self._client_kwargs = {"endpoint_url": self.endpoint_url, "config": self.config}
        if verify is not None:
            self._client_kwargs["verify"] = verify
        self._clients = {}

    def client(self, service: str):
        if service not in self._clients:
            try:
                self._clients[service] = self.session.client(service, **self._client_kwargs)
            except (BotoCoreError, ValueError) as exc:
                raise InputError("use", "the AWS KMS provider", self.scrub(f"cannot build the {service} client ({exc})")) from None
        return self._clients[service]

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "********")
        return text

    def where(self) -> str:
        return f"AWS KMS ({self.region}{', ' + self.endpoint_url if self.endpoint_url else ''})"

    def call(self, service: str, operation: str, action: str, obj: str, **kwargs):
        """Call one API operation; translate failures into TeeKmsError(action, obj, cause)."""
        try:
            return getattr(self.client(service), operation)(**kwargs)
        except ClientError as exc:
            raise self.translate(exc, action, obj) from None
        except BotoCoreError as exc:
            raise ProviderError(action, obj, self.scrub(f"{self.where()} could not be reached or answered badly ({exc})")) from None

    def translate(self, exc, action: str, obj: str) -> TeeKmsError:
        code = error_code(exc)
        message = self.scrub(str(exc.response.get("Error", {}).get("Message") or code))
        # The endpoint's own words: escaped, so that a hostile one cannot forge lines or drive the terminal.
        cause = escape_controls(f"{self.where()} answered {code}: {message}", lines=False)
        if code in NOT_FOUND_CODES:
            return NotFoundError(action, obj, cause)
        if code in DENIED_CODES:
            return AccessDeniedError(action, obj, cause)
        return ProviderError(action, obj, cause)


def max_attempts() -> int:
    """Attempts per API call: AWS_MAX_ATTEMPTS (the standard AWS variable) or MAX_ATTEMPTS."""
    try:
        return max(1, int(os.environ.get("AWS_MAX_ATTEMPTS", MAX_ATTEMPTS)))
    except ValueError:
        return MAX_ATTEMPTS


def error_code(exc) -> str:
    try:
        return exc.response["Error"]["Code"]
    except (AttributeError, KeyError, TypeError):
        return type(exc).__name__


def wait_for(check, action: str, obj: str, what: str, timeout: float = 60.0):
    """Poll ``check()`` until it returns a true value (eventual consistency after writes)."""
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise ProviderError(action, obj, f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 3.0)
