# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Key policy build/merge/normalise/evaluate for provider=aws (pure, no server)."""

from __future__ import annotations

import json

import pytest
from kms_testlib import M1, M2, M3

from ansible_collections.alfred.tee_kms.plugins.module_utils._kms import aws_policy as p
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.aws import read_record, record_tags

ACCOUNT = "111122223333"
PCR0 = p.condition_key(0)


def built(measurements=(M1,)):
    return p.build_policy(ACCOUNT, list(measurements), PCR0)


def test_build_has_admin_allow_and_deny():
    doc = p.parse(built())
    assert [s["Sid"] for s in doc["Statement"]] == [p.SID_ADMIN, p.SID_ALLOW, p.SID_DENY, p.SID_DENY_PATHS]
    assert doc["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert doc["Statement"][1]["Condition"] == {"StringEqualsIgnoreCase": {PCR0: [M1]}}
    assert doc["Statement"][2]["Condition"] == {"StringNotEqualsIgnoreCase": {PCR0: [M1]}}
    assert p.allowed_measurements(doc) == [M1]
    assert "BypassPolicyLockoutSafetyCheck" not in built()
    with pytest.raises(p.PolicyError, match="empty"):
        p.build_policy(ACCOUNT, [], PCR0)


def test_merge_keeps_foreign_statements_byte_for_byte():
    foreign = '{"Sid":"X",  "Effect" : "Allow","Principal":{"AWS":"arn:aws:iam::444455556666:role/r"},\n "Action":"kms:DescribeKey","Resource":"*"}'
    doc = json.loads(built())
    text = '{\n "Version":"2012-10-17",\n "Statement":[' + foreign + "," + ",".join(json.dumps(s) for s in doc["Statement"]) + '],\n "Id":"keep"}'
    merged = p.merge(text, [M1, M2], PCR0, ACCOUNT)
    assert foreign in merged
    assert merged.startswith('{\n "Version":"2012-10-17",\n "Statement":[') and merged.endswith('],\n "Id":"keep"}')
    assert json.dumps(doc["Statement"][0]) in merged  # the admin statement text too
    out = p.parse(merged)
    assert [s.get("Sid") for s in out["Statement"]] == ["X", p.SID_ADMIN, p.SID_ALLOW, p.SID_DENY, p.SID_DENY_PATHS]
    assert p.allowed_measurements(out) == [M1, M2]
    assert p.merge(merged, [M1, M2], PCR0, ACCOUNT) == merged  # stable


def test_merge_single_statement_object_and_refusals():
    admin = json.dumps(p.admin_statement(ACCOUNT))
    single = '{"Version":"2012-10-17","Statement":' + admin + "}"
    merged = p.parse(p.merge(single, [M1], PCR0, ACCOUNT))
    assert len(merged["Statement"]) == 4
    no_admin = '{"Version":"2012-10-17","Statement":[{"Sid":"Other","Effect":"Allow","Principal":"*","Action":"kms:Encrypt","Resource":"*"}]}'
    with pytest.raises(p.PolicyError, match="no key administrators' statement"):
        p.merge(no_admin, [M1], PCR0, ACCOUNT)
    with pytest.raises(p.PolicyError, match="not valid JSON"):
        p.merge("{not json", [M1], PCR0, ACCOUNT)
    with pytest.raises(p.PolicyError, match="empty"):
        p.merge(built(), [], PCR0, ACCOUNT)


def test_normalise_ignores_layout_order_and_case():
    a = built([M1, M2])
    doc = json.loads(a)
    doc["Statement"].reverse()
    doc["Statement"][1]["Condition"]["StringNotEqualsIgnoreCase"][PCR0] = [M2.upper(), M1]
    doc["Statement"][2]["Action"] = list(reversed(doc["Statement"][2]["Action"]))
    b = json.dumps(doc, separators=(",", ":"))
    assert p.equivalent(a, b)
    assert not p.equivalent(a, built([M1]))
    assert not p.equivalent(a, built([M1, M3]))


def test_evaluate_collection_policy():
    doc = p.parse(built([M1, M2]))
    assert p.evaluate(doc, M1) and p.evaluate(doc, M2.upper())
    assert not p.evaluate(doc, M3)
    assert not p.evaluate(doc, None)
    assert p.evaluate(doc, M1, action="kms:GenerateDataKey") and not p.evaluate(doc, M3, action="kms:GenerateDataKey")
    assert p.evaluate(doc, M3, action="kms:Encrypt")  # only plaintext-returning operations need attestation
    assert p.findings(doc, [M1, M2]) == []


def test_evaluate_without_deny_the_admin_statement_leaks():
    doc = p.parse(built())
    doc["Statement"] = doc["Statement"][:2]
    assert p.evaluate(doc, None) and p.evaluate(doc, M3)
    found = p.findings(doc)
    assert any("deny statement" in f for f in found)
    assert "a caller without attestation can decrypt" in found


def test_findings_for_foreign_statements():
    doc = p.parse(built())
    doc["Statement"] += [
        {"Sid": "App", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/app"}, "Action": "kms:Decrypt*", "Resource": "*"},
        {"Sid": "Everyone", "Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"},
        {"Sid": "Wild", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/w"}, "Action": "kms:Decrypt",
         "Resource": "*", "Condition": {"StringLike": {PCR0: ["*"]}}},
        {"Sid": "Image", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/i"}, "Action": "kms:Decrypt",
         "Resource": "*", "Condition": {"StringEqualsIgnoreCase": {p.IMAGE_SHA384: [M1]}}},
        {"Sid": "Enc", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/e"}, "Action": "kms:Encrypt", "Resource": "*"},
    ]
    found = p.findings(doc)
    assert any("(App)" in f and "role/app without an attestation condition" in f for f in found)
    assert any("(Everyone)" in f and "every principal" in f for f in found)
    assert any("(Wild)" in f for f in found)
    assert not any("(Image)" in f or "(Enc)" in f for f in found)
    # The collection's Deny still protects: no leak to unattested callers despite those Allows.
    assert not p.evaluate(doc, None) and not p.evaluate(doc, M3)


@pytest.mark.parametrize("action", p.PLAINTEXT_ACTIONS)
def test_no_unattested_path_to_plaintext(action):
    """Every key-scoped operation that yields plaintext or re-wraps it: the collection's
    policy lets no unattested caller use it, nor an attested one with a measurement outside
    the list; only the attested operations are open, and only to allowed measurements."""
    doc = p.parse(built([M1]))
    assert not p.evaluate(doc, None, action)
    assert not p.evaluate(doc, M3, action)
    assert p.evaluate(doc, M1, action) is (action in p.ATTESTED_ACTIONS)
    assert p.findings(doc, [M1]) == []
    # Even a foreign statement handing the operation to everyone does not open it.
    doc["Statement"].append({"Sid": "Open", "Effect": "Allow", "Principal": "*", "Action": action, "Resource": "*"})
    assert not p.evaluate(doc, None, action)


@pytest.mark.parametrize("action", p.UNATTESTED_PATH_ACTIONS)
def test_policy_of_before_this_change_leaks_the_unattested_paths(action):
    """The policy written before the third statement existed: the administrators' kms:*
    reaches ReEncrypt, CreateGrant and the WithoutPlaintext calls with no attestation."""
    doc = p.parse(built([M1]))
    doc["Statement"] = doc["Statement"][:3]
    assert p.evaluate(doc, None, action)
    found = p.findings(doc, [M1])
    assert f"a caller without attestation can call {action}" in found
    assert any(p.SID_DENY_PATHS in f for f in found)
    # Merging (any allow-list write) puts the statement back.
    healed = p.parse(p.merge(json.dumps(doc), [M1], PCR0, ACCOUNT))
    assert not p.evaluate(healed, None, action) and p.findings(healed, [M1]) == []


def test_a_deny_that_spares_some_principals_is_not_trusted():
    doc = p.parse(built([M1]))
    doc["Statement"][3]["Condition"] = {"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/rewrap"}}
    found = p.findings(doc, [M1])
    assert "a caller without attestation can call kms:ReEncryptFrom" in found


def test_foreign_policy_control_is_a_finding():
    doc = p.parse(built([M1]))
    doc["Statement"].append({"Sid": "Ops", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/ops"},
                             "Action": ["kms:PutKeyPolicy", "kms:Describe*"], "Resource": "*"})
    found = p.findings(doc, [M1])
    assert any("(Ops) allows kms:PutKeyPolicy to arn:aws:iam::111122223333:role/ops" in f for f in found)


def test_evaluate_foreign_deny_and_image_sha384():
    doc = p.parse(built([M1, M2]))
    doc["Statement"].append({"Sid": "NoM2", "Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
                             "Condition": {"StringEqualsIgnoreCase": {p.IMAGE_SHA384: [M2]}}})
    assert p.evaluate(doc, M1) and not p.evaluate(doc, M2)
    # A Deny that names a single role or depends on a property we do not model is not
    # assumed to apply: the answer over-approximates access.
    doc = p.parse(built([M1]))
    doc["Statement"][2]["Principal"] = {"AWS": "arn:aws:iam::111122223333:role/one"}
    assert p.evaluate(doc, M3)
    doc = p.parse(built([M1]))
    doc["Statement"][2]["Condition"]["Bool"] = {"aws:SecureTransport": "true"}
    assert p.evaluate(doc, M3)


def test_condition_operators():
    ctx = {PCR0: M1}
    assert p._test("StringEquals", PCR0, [M1], ctx) is True
    assert p._test("StringEquals", PCR0, [M1.upper()], ctx) is False
    assert p._test("StringEqualsIgnoreCase", PCR0, [M1.upper()], ctx) is True
    assert p._test("StringLike", PCR0, [M1[:10] + "*"], ctx) is True
    assert p._test("StringNotEquals", PCR0, [M1], {}) is True  # missing key matches negated operators
    assert p._test("StringEquals", PCR0, [M1], {}) is False
    assert p._test("StringEqualsIfExists", PCR0, [M2], {}) is True
    assert p._test("Null", PCR0, ["true"], {}) is True and p._test("Null", PCR0, ["true"], ctx) is False
    assert p._test("StringEquals", p.condition_key(8), [M1], ctx) is None  # another PCR: unknown
    assert p._test("NumericLessThan", PCR0, ["1"], ctx) is None
    with pytest.raises(p.PolicyError):
        p.condition_key(32)


def test_pretty_diff_text_is_json():
    text = p.pretty(json.dumps(json.loads(built()), separators=(",", ":")))
    assert text.endswith("\n") and '\n  "Statement": [' in text and json.loads(text)


def test_tag_records_roundtrip_and_damage():
    record = {"owner": "awx job #42 (x)", "list": [M1, M2, M3] * 4}
    tags = record_tags("snapshot", record)
    assert all(len(v) <= 256 for v in tags.values()) and len(tags) > 2
    assert all(set(v) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=:") for v in tags.values())
    assert read_record(tags, "snapshot") == record
    assert read_record({}, "snapshot") is None
    damaged = dict(tags)
    first = damaged["alfred:tee_kms:snapshot:0"]
    damaged["alfred:tee_kms:snapshot:0"] = ("B" if first[0] == "A" else "A") + first[1:]
    with pytest.raises(Exception, match="damaged"):
        read_record(damaged, "snapshot")
