# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The KMS modules with provider=aws against a real moto server: check mode, diff,
idempotence and refusals. Every module runs as its own process."""

from __future__ import annotations

import json
import subprocess
import sys

from aws_support import M1, M2, M3, REGION, REPO, SECRET, aws_env, run_module, version_key_ids


def create(alias, url, tmp_path, measurements=(M1,), **kw):
    result = run_module("kms_key", dict(key_id=alias, allowed_measurements=list(measurements), **kw), url, tmp_dir=tmp_path)
    assert result["_rc"] == 0 and result["changed"], result
    return result


def info(alias, url, tmp_path, **kw):
    result = run_module("kms_key_info", dict(key_id=alias, **kw), url, tmp_dir=tmp_path)
    return result


def policy_text(kms, key_id):
    return kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]


# --------------------------------------------------------------------------- kms_key

def test_kms_key_check_mode_creates_nothing_then_apply_then_idempotent(moto_url, alias, tmp_path, kms):
    checked = run_module("kms_key", dict(key_id=alias, allowed_measurements=[M1.upper()]), moto_url, check=True, diff=True, tmp_dir=tmp_path)
    assert checked["_rc"] == 0 and checked["changed"] is True
    assert checked["diff"]["before"] == {} and checked["diff"]["after"]["allowed_measurements"] == [M1]
    assert info(alias, moto_url, tmp_path, missing_ok=True)["exists"] is False
    assert version_key_ids(kms, alias) == {}

    created = create(alias, moto_url, tmp_path)
    assert created["key"]["primary_version"] == 1
    assert created["key"]["versions"][0]["state"] == "enabled"
    assert created["key"]["allowed_measurements"] == [M1]

    again = run_module("kms_key", dict(key_id=alias, allowed_measurements=[M1]), moto_url, diff=True, tmp_dir=tmp_path)
    assert again["_rc"] == 0 and again["changed"] is False and "diff" not in again

    # The key really is a KMS key behind the alias, tagged with alias and version.
    kid = version_key_ids(kms, alias)[1]
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == kid
    meta = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert meta["KeySpec"] == "SYMMETRIC_DEFAULT" and meta["KeyUsage"] == "ENCRYPT_DECRYPT"
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=kid)["Tags"]}
    assert tags["alfred:tee_kms:key_id"] == alias and tags["alfred:tee_kms:version"] == "1"
    doc = json.loads(policy_text(kms, kid))
    sids = [s.get("Sid") for s in doc["Statement"]]
    assert sids == ["Enable IAM User Permissions", "AlfredTeeKmsAttestedDecrypt", "AlfredTeeKmsDenyUnattested",
                    "AlfredTeeKmsDenyUnattestedPaths"]
    allow = doc["Statement"][1]
    assert allow["Condition"] == {"StringEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": [M1]}}
    assert "kms:Decrypt" in allow["Action"]


def test_kms_key_refusals_name_action_object_cause(moto_url, alias, tmp_path):
    empty = run_module("kms_key", dict(key_id=alias, allowed_measurements=[]), moto_url, tmp_dir=tmp_path)
    assert empty["failed"] and "Could not create key" in empty["msg"] and "at least one measurement" in empty["msg"]

    not_alias = run_module("kms_key", dict(key_id="tokens/refresh", allowed_measurements=[M1]), moto_url, tmp_dir=tmp_path)
    assert not_alias["failed"] and "Could not read key 'tokens/refresh'" in not_alias["msg"] and "alias/" in not_alias["msg"]

    sha256 = run_module("kms_key", dict(key_id=alias, allowed_measurements=["ab" * 32], measurement_format="sha256"), moto_url, tmp_dir=tmp_path)
    assert sha256["failed"] and "measurement_format sha256 is not supported by provider aws" in sha256["msg"]

    zero = run_module("kms_key", dict(key_id=alias, allowed_measurements=["0" * 96]), moto_url, tmp_dir=tmp_path)
    assert zero["failed"]
    assert info(alias, moto_url, tmp_path, missing_ok=True)["exists"] is False


def test_kms_key_absent_needs_allow_destroy_then_schedules_every_version(moto_url, alias, tmp_path, kms):
    create(alias, moto_url, tmp_path)
    assert run_module("kms_key_version", dict(key_id=alias, version=2), moto_url, tmp_dir=tmp_path)["changed"]
    refused = run_module("kms_key", dict(key_id=alias, state="absent"), moto_url, tmp_dir=tmp_path)
    assert refused["failed"] and "allow_destroy=true" in refused["msg"]
    short = run_module("kms_key", dict(key_id=alias, state="absent", allow_destroy=True, pending_window_days=3), moto_url, tmp_dir=tmp_path)
    assert short["failed"] and "between 7 and 30" in short["msg"]
    checked = run_module("kms_key", dict(key_id=alias, state="absent", allow_destroy=True, pending_window_days=7), moto_url,
                         check=True, tmp_dir=tmp_path)
    assert checked["changed"] and all(kms.describe_key(KeyId=k)["KeyMetadata"]["KeyState"] == "Enabled"
                                      for k in version_key_ids(kms, alias).values())
    gone = run_module("kms_key", dict(key_id=alias, state="absent", allow_destroy=True, pending_window_days=7), moto_url, tmp_dir=tmp_path)
    assert gone["changed"] and gone["key"]["pending_deletion_at"]
    assert [v["state"] for v in gone["key"]["versions"]] == ["destroy_scheduled", "destroy_scheduled"]
    assert {kms.describe_key(KeyId=k)["KeyMetadata"]["KeyState"] for k in version_key_ids(kms, alias).values()} == {"PendingDeletion"}
    again = run_module("kms_key", dict(key_id=alias, state="absent", allow_destroy=True, pending_window_days=7), moto_url, tmp_dir=tmp_path)
    assert again["_rc"] == 0 and again["changed"] is False
    blocked = run_module("kms_key_version", dict(key_id=alias, version=3), moto_url, tmp_dir=tmp_path)
    assert blocked["failed"] and "it is scheduled for deletion on" in blocked["msg"]


# --------------------------------------------------------------------------- kms_key_info

def test_kms_key_info_shape_and_missing(moto_url, alias, tmp_path):
    missing = info(alias, moto_url, tmp_path)
    assert missing["failed"] and missing["msg"].startswith(f"Could not read key '{alias}': it does not exist in AWS KMS ({REGION}")
    assert missing["error"]["code"] == "not_found"
    create(alias, moto_url, tmp_path)
    got = info(alias, moto_url, tmp_path)
    assert got["changed"] is False and got["exists"] is True
    assert set(got["key"]) == {"key_id", "primary_version", "versions", "allowed_measurements", "measurement_format",
                               "env", "pending_deletion_at", "lock", "snapshot", "attestation_trust"}
    assert got["key"]["versions"][0].keys() == {"version", "state", "created_at"}
    assert got["key"]["lock"] is None and got["key"]["snapshot"] is None
    assert SECRET not in got["_raw"]


# --------------------------------------------------------------------------- kms_key_version

def test_kms_key_version_lifecycle(moto_url, alias, tmp_path, kms):
    create(alias, moto_url, tmp_path)
    checked = run_module("kms_key_version", dict(key_id=alias, version=2, state="present"), moto_url, check=True, diff=True, tmp_dir=tmp_path)
    assert checked["changed"] and checked["diff"]["after"]["versions"] == {"1": "enabled", "2": "enabled"}
    assert 2 not in version_key_ids(kms, alias)

    skipped = run_module("kms_key_version", dict(key_id=alias, version=3), moto_url, tmp_dir=tmp_path)
    assert skipped["failed"] and "the next version can only be 2" in skipped["msg"]

    staged = run_module("kms_key_version", dict(key_id=alias, version=2), moto_url, tmp_dir=tmp_path)
    assert staged["changed"] and staged["primary"] is False and staged["key"]["primary_version"] == 1
    kid2 = version_key_ids(kms, alias)[2]
    assert json.loads(policy_text(kms, kid2))["Statement"][1]["Condition"]["StringEqualsIgnoreCase"]["kms:RecipientAttestation:PCR0"] == [M1]
    assert run_module("kms_key_version", dict(key_id=alias, version=2), moto_url, tmp_dir=tmp_path)["changed"] is False

    promoted = run_module("kms_key_version", dict(key_id=alias, version=2, state="primary"), moto_url, diff=True, tmp_dir=tmp_path)
    assert promoted["changed"] and promoted["primary"] and promoted["diff"]["before"]["primary_version"] == 1
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == kid2
    assert run_module("kms_key_version", dict(key_id=alias, version=2, state="primary"), moto_url, tmp_dir=tmp_path)["changed"] is False

    primary_off = run_module("kms_key_version", dict(key_id=alias, version=2, state="disabled"), moto_url, tmp_dir=tmp_path)
    assert primary_off["failed"] and "version 2 is the primary version; promote another version first" in primary_off["msg"]

    off = run_module("kms_key_version", dict(key_id=alias, version=1, state="disabled"), moto_url, tmp_dir=tmp_path)
    assert off["changed"] and off["version"]["state"] == "disabled"
    kid1 = version_key_ids(kms, alias)[1]
    assert kms.describe_key(KeyId=kid1)["KeyMetadata"]["KeyState"] == "Disabled"
    no_promote = run_module("kms_key_version", dict(key_id=alias, version=1, state="primary"), moto_url, tmp_dir=tmp_path)
    assert no_promote["failed"] and "Could not promote version 1 of key" in no_promote["msg"] and "version 1 is disabled" in no_promote["msg"]

    # While version 1 is disabled the allow-list changes; enabling it brings today's list.
    assert run_module("measurement_allowlist", dict(key_id=alias, measurements=[M1, M2]), moto_url, tmp_dir=tmp_path)["changed"]
    assert "enclave" not in policy_text(kms, kid1) and M2 not in policy_text(kms, kid1)
    on = run_module("kms_key_version", dict(key_id=alias, version=1, state="enabled"), moto_url, tmp_dir=tmp_path)
    assert on["changed"] and kms.describe_key(KeyId=kid1)["KeyMetadata"]["KeyState"] == "Enabled"
    assert M2 in policy_text(kms, kid1)

    no_confirm = run_module("kms_key_version", dict(key_id=alias, version=1, state="destroy_scheduled"), moto_url, tmp_dir=tmp_path)
    assert no_confirm["failed"] and "allow_destroy=true" in no_confirm["msg"]
    destroy = run_module("kms_key_version", dict(key_id=alias, version=1, state="destroy_scheduled", allow_destroy=True,
                                                 pending_window_days=7), moto_url, tmp_dir=tmp_path)
    assert destroy["changed"] and kms.describe_key(KeyId=kid1)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    back = run_module("kms_key_version", dict(key_id=alias, version=1, state="enabled"), moto_url, tmp_dir=tmp_path)
    assert back["changed"] and kms.describe_key(KeyId=kid1)["KeyMetadata"]["KeyState"] == "Enabled"


# --------------------------------------------------------------------------- measurement_allowlist

def test_measurement_allowlist_every_enabled_version_and_idempotence(moto_url, alias, tmp_path, kms):
    create(alias, moto_url, tmp_path)
    run_module("kms_key_version", dict(key_id=alias, version=2), moto_url, tmp_dir=tmp_path)
    ids = version_key_ids(kms, alias)
    before = {n: policy_text(kms, k) for n, k in ids.items()}

    checked = run_module("measurement_allowlist", dict(key_id=alias, measurements=[M2], state="present"), moto_url,
                         check=True, diff=True, tmp_dir=tmp_path)
    assert checked["changed"] and checked["added"] == [M2] and checked["diff"]["after"]["allowed_measurements"] == [M1, M2]
    assert {n: policy_text(kms, k) for n, k in ids.items()} == before

    applied = run_module("measurement_allowlist", dict(key_id=alias, measurements=[M2], state="present"), moto_url, tmp_dir=tmp_path)
    assert applied["changed"] and applied["allowed_measurements"] == [M1, M2]
    for kid in ids.values():
        assert M2 in policy_text(kms, kid)
    again = run_module("measurement_allowlist", dict(key_id=alias, measurements=[M2.upper()], state="present"), moto_url, tmp_dir=tmp_path)
    assert again["changed"] is False

    protected = run_module("measurement_allowlist", dict(key_id=alias, measurements=[M3], state="exact", protect=[M1]), moto_url, tmp_dir=tmp_path)
    assert protected["failed"] and "protected measurement" in protected["msg"]
    emptied = run_module("measurement_allowlist", dict(key_id=alias, measurements=[M1, M2], state="absent"), moto_url, tmp_dir=tmp_path)
    assert emptied["failed"] and "lock every enclave out" in emptied["msg"]
    assert info(alias, moto_url, tmp_path)["key"]["allowed_measurements"] == [M1, M2]


def test_reformatted_policy_is_not_a_change_and_foreign_statements_survive(moto_url, alias, tmp_path, kms):
    create(alias, moto_url, tmp_path)
    kid = version_key_ids(kms, alias)[1]
    doc = json.loads(policy_text(kms, kid))
    foreign = '{ "Sid" : "AuditorsDescribe",\n\t"Effect":"Allow", "Principal" :{"AWS":"arn:aws:iam::123456789012:role/auditor"},'\
              '"Action":["kms:DescribeKey"  ,"kms:GetKeyPolicy"],"Resource":"*"}'
    # Same statements, other key order and layout, plus a foreign statement in the middle.
    own = [json.dumps(dict(reversed(list(s.items())))) for s in doc["Statement"]]
    text = '{"Statement": [' + own[0] + ",  " + foreign + " ,\n" + ",".join(own[1:]) + '],   "Version":"2012-10-17"}'
    kms.put_key_policy(KeyId=kid, PolicyName="default", Policy=text)

    same = run_module("measurement_allowlist", dict(key_id=alias, measurements=[M1]), moto_url, tmp_dir=tmp_path)
    assert same["_rc"] == 0 and same["changed"] is False
    assert policy_text(kms, kid) == text

    changed = run_module("measurement_allowlist", dict(key_id=alias, measurements=[M1, M3]), moto_url, tmp_dir=tmp_path)
    assert changed["changed"]
    after = policy_text(kms, kid)
    assert foreign in after and own[0] in after  # byte-for-byte
    assert M3 in after
    run_module("kms_key_version", dict(key_id=alias, version=2), moto_url, tmp_dir=tmp_path)
    assert foreign in policy_text(kms, version_key_ids(kms, alias)[2])  # carried to the new version


def test_policy_without_admin_statement_is_refused_unchanged(moto_url, alias, tmp_path, kms):
    create(alias, moto_url, tmp_path)
    kid = version_key_ids(kms, alias)[1]
    doc = json.loads(policy_text(kms, kid))
    doc["Statement"] = doc["Statement"][1:]
    text = json.dumps(doc)
    kms.put_key_policy(KeyId=kid, PolicyName="default", Policy=text)
    refused = run_module("measurement_allowlist", dict(key_id=alias, measurements=[M2]), moto_url, tmp_dir=tmp_path)
    assert refused["failed"] and "no key administrators' statement" in refused["msg"]
    assert policy_text(kms, kid) == text


# --------------------------------------------------------------------------- credentials, boto3

def test_unreachable_endpoint_fails_clearly_without_secrets(tmp_path):
    from aws_support import free_port

    url = f"http://127.0.0.1:{free_port()}"
    result = run_module("kms_key_info", dict(key_id="alias/unreachable", secret_key=SECRET, session_token="TokenSecret-xyz"), url,
                        env={"AWS_MAX_ATTEMPTS": "2"}, tmp_dir=tmp_path)
    assert result["failed"] and result["msg"].startswith("Could not read key 'alias/unreachable': AWS KMS (us-east-1, " + url)
    assert SECRET not in result["_raw"] and "TokenSecret-xyz" not in result["_raw"]


def test_region_is_required(moto_url, alias, tmp_path):
    result = run_module("kms_key_info", dict(key_id=alias), moto_url, env={"AWS_REGION": ""}, tmp_dir=tmp_path)
    assert result["failed"] and "region is required" in result["msg"]


def test_missing_boto3_gives_missing_required_lib(moto_url, alias, tmp_path):
    module = str(REPO / "plugins" / "modules" / "kms_key_info.py")
    shim = ("import sys, runpy; sys.modules['boto3'] = None; sys.modules['botocore'] = None; "
            f"sys.argv = [{module!r}] + sys.argv[1:]; runpy.run_path({module!r}, run_name='__main__')")
    result = run_module("kms_key_info", dict(key_id=alias), moto_url, python_args=["-c", shim], tmp_dir=tmp_path)
    assert result["failed"]
    assert result["msg"].startswith("Failed to import the required Python library (boto3)")
    # and the local provider does not need boto3 at all
    local = run_module("kms_key_info", dict(provider="local", key_id="tokens/x", store_path=str(tmp_path / "s.json"), missing_ok=True),
                       moto_url, python_args=["-c", shim], tmp_dir=tmp_path)
    assert local["_rc"] == 0 and local["exists"] is False


# --------------------------------------------------------------------------- through ansible-playbook

def test_playbook_check_diff_apply_idempotent(moto_url, alias, tmp_path):
    playbook = REPO / "tests" / "aws" / "playbooks" / "allowlist.yml"
    base = [str(REPO / ".venv" / "bin" / "ansible-playbook"), str(playbook), "-i", "localhost,", "-c", "local",
            "-e", json.dumps({"kms_key_id": alias, "endpoint": moto_url, "first": M1, "second": M2})]
    cfg = tmp_path / "ansible.cfg"  # the collection from this checkout, no evidence callback
    cfg.write_text(f"[defaults]\ncollections_path = {REPO / '.collections'}\nretry_files_enabled = false\n")
    env = aws_env({"ANSIBLE_CONFIG": str(cfg), "ANSIBLE_PYTHON_INTERPRETER": sys.executable, "ANSIBLE_NOCOLOR": "1",
                   "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"), "HOME": str(tmp_path)})

    def play(*extra):
        proc = subprocess.run(base + list(extra), capture_output=True, text=True, env=env, cwd=str(REPO), timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert SECRET not in proc.stdout
        return proc.stdout

    rehearsal = play("--check", "--diff")
    assert "changed=" in rehearsal and '"allowed_measurements"' in rehearsal
    first = play()
    assert "changed=2" in first
    second = play()
    assert "changed=0" in second and "failed=0" in second
