# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Options of the aws provider (plugins/module_utils/_kms/aws.py), named as amazon.aws names them.
    DOCUMENTATION = r"""
options:
  region:
    description:
      - AWS region (O(provider=aws)). If not set, E(AWS_REGION) or E(AWS_DEFAULT_REGION) is used.
    type: str
    aliases: [aws_region, ec2_region]
  endpoint_url:
    description:
      - URL of the AWS KMS API to connect to instead of the public endpoint (private endpoints, test servers).
      - If not set, E(AWS_URL) or E(AWS_ENDPOINT_URL) is used.
    type: str
    aliases: [aws_endpoint_url, ec2_url]
  access_key:
    description:
      - AWS access key ID. If not set, E(AWS_ACCESS_KEY_ID), E(AWS_ACCESS_KEY) or E(EC2_ACCESS_KEY) is used.
    type: str
    aliases: [aws_access_key_id, aws_access_key, ec2_access_key]
  secret_key:
    description:
      - AWS secret access key. If not set, E(AWS_SECRET_ACCESS_KEY), E(AWS_SECRET_KEY) or E(EC2_SECRET_KEY) is used.
    type: str
    aliases: [aws_secret_access_key, aws_secret_key, ec2_secret_key]
  session_token:
    description:
      - AWS session token for temporary credentials. If not set, E(AWS_SESSION_TOKEN) is used.
    type: str
    aliases: [aws_session_token, security_token, aws_security_token, access_token]
  profile:
    description:
      - Named AWS profile. If not set, E(AWS_PROFILE) or E(AWS_DEFAULT_PROFILE) is used.
      - When explicit keys are given as well, the explicit keys win.
    type: str
    aliases: [aws_profile]
  validate_certs:
    description:
      - Whether to verify TLS certificates of the AWS endpoint.
    type: bool
    default: true
    aliases: [aws_validate_certs]
  aws_ca_bundle:
    description:
      - CA bundle for the AWS endpoint. If not set, E(AWS_CA_BUNDLE) is used.
    type: path
requirements:
  - boto3 >= 1.34 (only with O(provider=aws))
"""
