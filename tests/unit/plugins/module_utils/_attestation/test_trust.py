# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One trust definition: the same fields, defaults and checks for attestation_verify, a key's
stored trust (kms_key, the decrypt gate) and rotation_inputs."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
import yaml
from attest_testlib import JwtWorld, NitroWorld

from ansible_collections.alfred.tee_kms.plugins.doc_fragments import attestation as fragment
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import trust
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import InputError
from kms_testlib import Signer


def test_one_field_list_for_the_spec_and_both_doc_fragments():
    assert tuple(trust.argument_spec()) == trust.FIELDS
    task = yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]["trust"]["suboptions"]
    key = yaml.safe_load(fragment.ModuleDocFragment.KEY_TRUST)["options"]["attestation_trust"]["suboptions"]
    assert set(task) == set(key) == set(trust.FIELDS)
    for name, spec in trust.argument_spec().items():
        assert task[name].get("type") == spec["type"] and task[name].get("elements") == spec.get("elements"), name
        assert task[name].get("choices") == spec.get("choices"), name
        assert "default" not in task[name] and "default" not in spec, name  # defaults live in trust.DEFAULTS
    assert task == key, "the trust suboptions of attestation_verify and of a key's attestation_trust differ"
    flat = yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]
    for name in trust.FIELDS:
        if name not in trust.NOT_FLAT:  # attestation_verify's own max_age option is in the freshness fragment
            assert {k: v for k, v in flat[name].items() if k != "description"} == \
                {k: v for k, v in task[name].items() if k != "description"}, name


def test_key_trust_is_self_contained():
    with pytest.raises(InputError, match="jwks_url cannot be kept with a key"):
        trust.validate({"jwks_url": "https://attest.example/keys"}, trust.KEY)
    assert trust.validate({"jwks_url": "https://attest.example/keys"}, trust.TASK) == {"jwks_url": "https://attest.example/keys"}


def test_key_trust_gets_the_checks_attestation_verify_always_had(tmp_path):
    with pytest.raises(InputError, match="^Could not configure attestation trust for key: nitro_pcrs must be distinct"):
        trust.validate({"nitro_pcrs": [0, 0]}, trust.KEY)
    with pytest.raises(InputError, match="root_certificate is not a PEM certificate"):
        trust.validate({"root_certificate": "-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----\n"}, trust.KEY)
    with pytest.raises(InputError, match="root_certificate is neither PEM text nor the path"):
        trust.validate({"root_certificate": str(tmp_path / "missing.pem")}, trust.KEY)
    with pytest.raises(InputError, match="jwks has no non-empty 'keys' list"):
        trust.validate({"jwks": {"keys": []}}, trust.KEY)
    with pytest.raises(InputError, match="algorithms HS256 are not among"):
        trust.validate({"algorithms": ["HS256"]}, trust.KEY)
    with pytest.raises(InputError, match="max_age must be"):
        trust.validate({"max_age": -1}, trust.KEY)


def test_normal_form_reads_files_and_keeps_what_was_given(tmp_path):
    world, jwt_world, signer = NitroWorld(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)), JwtWorld(), Signer()
    pem = tmp_path / "root.pem"
    pem.write_bytes(world.root_pem)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(jwt_world.jwks))
    given = {"public_keys": [signer.public_b64], "root_certificate": str(pem), "jwks": str(jwks), "nitro_pcrs": [0],
             "issuer": None, "algorithms": []}
    for context in (trust.KEY, trust.TASK):
        normal = trust.validate(given, context)
        assert normal["root_certificate"] == world.root_pem.decode()
        assert normal["nitro_pcrs"] == [0]  # an explicit default is kept: the stored trust records what was given
        assert "issuer" not in normal and "algorithms" not in normal
        assert trust.validate(normal, context) == normal  # idempotent: a stored trust re-validates unchanged
    assert trust.validate(given, trust.KEY)["jwks"] == jwt_world.jwks


def test_verify_options_defaults_and_decrypt_freshness():
    options = trust.verify_options({})
    assert options.nitro_pcrs == trust.DEFAULTS["nitro_pcrs"] and options.measurement_claim == "measurement"
    assert options.max_age is None and options.clock_skew == 60 and options.public_keys == []
    signer = Signer()
    options = trust.verify_options({"public_keys": [signer.public_b64], "max_age": 30}, nonce="n1")
    assert options.public_keys == [base64.b64decode(signer.public_b64)] and options.max_age == 30 and options.nonce == "n1"
    assert trust.verify_options({"max_age": 30}, max_age=5).max_age == 5


def test_the_decrypt_gate_applies_its_freshness_default():
    import time

    from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import AccessDeniedError
    from ansible_collections.alfred.tee_kms.plugins.module_utils._kms import rules

    signer, now = Signer("k"), int(time.time())
    keys = {"public_keys": [signer.public_b64]}
    old = signer.attestation("ab" * 48, issued_at=now - 400, expires_at=now + 60, evidence_issued_at=now - 310)
    with pytest.raises(AccessDeniedError, match=f"max_age is {trust.DECRYPT_MAX_AGE}s"):
        rules.require_attestation(keys, old, ["ab" * 48], "x", "k", lambda *args: None)
    recent = signer.attestation("ab" * 48, evidence_issued_at=now - 20, issued_at=now - 25)
    with pytest.raises(AccessDeniedError, match="max_age is 10s"):
        rules.require_attestation(dict(keys, max_age=10), recent, ["ab" * 48], "x", "k", lambda *args: None)
    assert rules.require_attestation(keys, recent, ["ab" * 48], "x", "k", lambda *args: None)[1] == "alfred"


def test_login_audience_must_differ_from_the_audience_of_evidence():
    for context in (trust.KEY, trust.TASK):
        with pytest.raises(InputError, match="login_audience must differ from audience"):
            trust.validate({"audience": "a", "login_audience": "a"}, context)
    assert trust.validate({"audience": "a", "login_audience": "b"}, trust.KEY) == {"audience": "a", "login_audience": "b"}
    assert trust.verify_options({"login_audience": "b"}).login_audience == "b"
