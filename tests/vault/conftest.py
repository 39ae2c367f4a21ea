# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the provider=vault suites: a real `bao server -dev` (OpenBao) per session on a
free loopback port, with Transit, KV v2 and JWT auth trusting the enclave simulator's JWKS,
killed at teardown. The helpers live in vault_support.py under a unique module name: every
suite's conftest is importable only as "conftest", so tests must not import it."""

from vault_support import bao, bao_server, enclave_path, fleet, inventory, key_id, provider, proxy  # noqa: F401  (fixtures)

__all__ = ["bao", "bao_server", "enclave_path", "fleet", "inventory", "key_id", "provider", "proxy"]
