# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the AWS suites. The helpers live in aws_support.py under a unique module
name: every suite's conftest is importable only as "conftest", so tests must not import it."""

from aws_support import alias, kms, moto_url, provider, provider_for, proxy, strict_kms  # noqa: F401  (fixtures)

__all__ = ["alias", "kms", "moto_url", "provider", "provider_for", "proxy", "strict_kms"]
