# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The "Vault KMS" AWX credential type: its injectors, rendered as AWX renders them, give a
module the environment it needs to reach the real server, with a token or with AppRole."""

from __future__ import annotations

import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment
from vault_support import M_CURRENT, REPO, new_key, new_key_id, rotation_approle, run_module

CREDENTIAL_TYPE = REPO / "playbooks" / "vars" / "awx_vault_credential_type.yml"


class _Unsafe(yaml.SafeLoader):
    pass


_Unsafe.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def render(inputs: dict) -> dict:
    data = yaml.load(CREDENTIAL_TYPE.read_text(), Loader=_Unsafe)  # noqa: S506 - SafeLoader subclass
    injectors = data["tee_kms_awx_vault_credential_type_injectors"]
    namespace = dict(inputs, tower={"filename": {"ca_cert": "/runner/env/ca.pem"}})
    sandbox = ImmutableSandboxedEnvironment()
    env = {k: sandbox.from_string(v).render(**namespace) for k, v in injectors["env"].items()}
    fields = {f["id"]: f for f in data["tee_kms_awx_vault_credential_type_inputs"]["fields"]}
    assert {k for k, f in fields.items() if f.get("secret")} == {"token", "secret_id"}
    return env


def without_vault(env: dict) -> dict:
    """The job's environment has only what the credential injects."""
    return {"VAULT_ADDR": None, "VAULT_TOKEN": None, **env}


def test_token_credential_reaches_the_server(bao, fleet, provider, tmp_path):
    key_id = new_key(bao, fleet, provider)
    env = render({"url": bao.url, "token": bao.root_token})
    assert env["ANSIBLE_HASHI_VAULT_AUTH_METHOD"] == "token" and env["VAULT_CACERT"] == "" and env["VAULT_NAMESPACE"] == ""
    got = run_module("kms_key_info", dict(key_id=key_id), bao, env=without_vault(env), tmp_dir=tmp_path)
    assert got["_rc"] == 0 and got["key"]["allowed_measurements"] == [M_CURRENT], got
    assert bao.root_token not in got["_raw"]


def test_approle_credential_reaches_the_server(bao, fleet, provider, tmp_path):
    key_id = new_key_id()
    role_id, secret_id = rotation_approle(bao, fleet, "awx", [key_id])
    new_key(bao, fleet, provider, key_id)
    env = render({"url": bao.url, "auth_method": "approle", "role_id": role_id, "secret_id": secret_id})
    assert env["VAULT_TOKEN"] == ""
    got = run_module("kms_key_info", dict(key_id=key_id), bao, env=without_vault(env), tmp_dir=tmp_path)
    assert got["_rc"] == 0 and got["key"]["primary_version"] == 1, got
    assert secret_id not in got["_raw"]
    wrong = render({"url": bao.url, "auth_method": "approle", "role_id": role_id, "secret_id": "wrong-secret-id-123"})
    refused = run_module("kms_key_info", dict(key_id=key_id), bao, env=without_vault(wrong), tmp_dir=tmp_path)
    assert refused["failed"] and "refused the AppRole login" in refused["msg"] and "wrong-secret-id-123" not in refused["_raw"]
