# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Provider options (shared by every KMS module) and the factory that builds a provider.

Private module_utils: the API may change without notice between releases.
"""

from __future__ import annotations

from ansible.module_utils.basic import env_fallback

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import InputError

PROVIDERS = ("local", "aws")

# Mirrors plugins/doc_fragments/provider.py. AWS option names and aliases follow amazon.aws
# so that existing module_defaults and credentials carry over.
PROVIDER_ARGSPEC = dict(
    provider=dict(type="str", default="local", choices=list(PROVIDERS)),
    key_id=dict(type="str", required=True),
    store_path=dict(type="path", fallback=(env_fallback, ["ALFRED_TEE_KMS_STORE"])),
    region=dict(type="str", aliases=["aws_region", "ec2_region"], fallback=(env_fallback, ["AWS_REGION", "AWS_DEFAULT_REGION"])),
    endpoint_url=dict(type="str", aliases=["aws_endpoint_url", "ec2_url"], fallback=(env_fallback, ["AWS_URL", "AWS_ENDPOINT_URL"])),
    # An access key id names a credential; it is not the secret part (amazon.aws does the same).
    access_key=dict(type="str", aliases=["aws_access_key_id", "aws_access_key", "ec2_access_key"], no_log=False,
                    fallback=(env_fallback, ["AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "EC2_ACCESS_KEY"])),
    secret_key=dict(type="str", aliases=["aws_secret_access_key", "aws_secret_key", "ec2_secret_key"], no_log=True,
                    fallback=(env_fallback, ["AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY", "EC2_SECRET_KEY"])),
    session_token=dict(type="str", aliases=["aws_session_token", "security_token", "aws_security_token", "access_token"], no_log=True,
                       fallback=(env_fallback, ["AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "EC2_SECURITY_TOKEN"])),
    profile=dict(type="str", aliases=["aws_profile"], fallback=(env_fallback, ["AWS_PROFILE", "AWS_DEFAULT_PROFILE"])),
    validate_certs=dict(type="bool", default=True, aliases=["aws_validate_certs"]),
    aws_ca_bundle=dict(type="path", fallback=(env_fallback, ["AWS_CA_BUNDLE"])),
)

# Mirrors plugins/doc_fragments/destruction.py (kms_key, kms_key_version).
DESTRUCTION_ARGSPEC = dict(
    allow_destroy=dict(type="bool", default=False),
    pending_window_days=dict(type="int", default=30),
)


def build_provider(params: dict):
    """Return a ready provider for the module parameters."""
    name = params.get("provider") or "local"
    if name == "local":
        from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local import LocalKmsProvider

        return LocalKmsProvider(params.get("store_path"))
    if name == "aws":
        from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.aws import AwsKmsProvider

        return AwsKmsProvider.from_params(params)
    raise InputError("use", f"KMS provider '{name}'", f"it is not one of {', '.join(PROVIDERS)}")
