# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""API faults between calls: throttling, 5xx, dropped connections and an unreachable
server, injected by a loopback proxy in front of moto. Retries absorb transient faults; a
persistent fault fails with a clear message and a re-run converges."""

from __future__ import annotations

import json

import pytest
from aws_support import M1, M2, SECRET, run_module, version_key_ids

pytestmark = pytest.mark.slow


def test_throttling_and_5xx_are_retried(proxy, alias, tmp_path, kms):
    throttle = proxy.add("CreateKey", "throttle", times=2)
    server = proxy.add("CreateAlias", "error500", times=2)
    created = run_module("kms_key", dict(key_id=alias, allowed_measurements=[M1]), proxy.url, tmp_dir=tmp_path)
    assert created["_rc"] == 0 and created["changed"], created
    assert throttle["hits"] == 2 and server["hits"] == 2
    assert len(version_key_ids(kms, alias)) == 1
    put = proxy.add("PutKeyPolicy", "throttle", times=3)
    changed = run_module("measurement_allowlist", dict(key_id=alias, measurements=[M1, M2]), proxy.url, tmp_dir=tmp_path)
    assert changed["changed"] and put["hits"] == 3
    assert run_module("measurement_allowlist", dict(key_id=alias, measurements=[M1, M2]), proxy.url, tmp_dir=tmp_path)["changed"] is False


def test_dropped_connections_are_retried_without_duplicates(proxy, alias, tmp_path, kms):
    create = run_module("kms_key", dict(key_id=alias, allowed_measurements=[M1]), proxy.url, tmp_dir=tmp_path)
    assert create["changed"]
    # The first UpdateAlias is dropped unanswered; the alias create of the new version is
    # processed but its answer is lost, so the retry meets AlreadyExists for its own alias.
    lost = proxy.add("CreateAlias", "drop_after", times=1)
    dropped = proxy.add("UpdateAlias", "drop", times=1)
    staged = run_module("kms_key_version", dict(key_id=alias, version=2, state="primary"), proxy.url, tmp_dir=tmp_path)
    assert staged["_rc"] == 0 and staged["changed"] and staged["key"]["primary_version"] == 2, staged
    assert lost["hits"] == 1 and dropped["hits"] == 1
    assert sorted(version_key_ids(kms, alias)) == [1, 2]


def test_persistent_failure_mid_operation_then_rerun_converges(proxy, alias, tmp_path, kms):
    assert run_module("kms_key", dict(key_id=alias, allowed_measurements=[M1]), proxy.url, tmp_dir=tmp_path)["changed"]
    run_module("kms_key_version", dict(key_id=alias, version=2), proxy.url, tmp_dir=tmp_path)
    ids = version_key_ids(kms, alias)
    # The server fails for good after the first policy write: version 2 (non-primary, written
    # first) has the new list, the primary (version 1, written last) does not.
    proxy.add("PutKeyPolicy", "error500", times=100, skip=1)
    failed = run_module("measurement_allowlist", dict(key_id=alias, measurements=[M1, M2]), proxy.url,
                        env={"AWS_MAX_ATTEMPTS": "2"}, tmp_dir=tmp_path)
    assert failed["failed"] and failed["msg"].startswith(f"Could not update the allow-list of version 1 of key '{alias}'"), failed
    assert "KMSInternalException" in failed["msg"] and SECRET not in failed["_raw"]
    assert M2 in kms.get_key_policy(KeyId=ids[2], PolicyName="default")["Policy"]
    assert M2 not in kms.get_key_policy(KeyId=ids[1], PolicyName="default")["Policy"]
    # Nothing reads as changed: the primary still has the old list, so a re-run repeats it.
    info = run_module("kms_key_info", dict(key_id=alias), proxy.url, tmp_dir=tmp_path)
    assert info["key"]["allowed_measurements"] == [M1]
    proxy.clear()
    again = run_module("measurement_allowlist", dict(key_id=alias, measurements=[M1, M2]), proxy.url, tmp_dir=tmp_path)
    assert again["changed"]
    for kid in ids.values():
        assert M2 in kms.get_key_policy(KeyId=kid, PolicyName="default")["Policy"]


def test_server_down_between_steps_of_a_promotion(proxy, alias, tmp_path, kms):
    assert run_module("kms_key", dict(key_id=alias, allowed_measurements=[M1]), proxy.url, tmp_dir=tmp_path)["changed"]
    proxy.add("UpdateAlias", "drop", times=1000)  # the version gets created, then the server is gone
    broken = run_module("kms_key_version", dict(key_id=alias, version=2, state="primary"), proxy.url,
                        env={"AWS_MAX_ATTEMPTS": "2"}, tmp_dir=tmp_path)
    assert broken["failed"] and "could not be reached" in broken["msg"], broken
    assert broken["msg"].startswith(f"Could not promote a version of key '{alias}'")
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == version_key_ids(kms, alias)[1]
    proxy.clear()
    proxy.down = True
    unreachable = run_module("kms_key_info", dict(key_id=alias), proxy.url, env={"AWS_MAX_ATTEMPTS": "1"}, tmp_dir=tmp_path)
    assert unreachable["failed"] and "could not be reached" in unreachable["msg"]
    proxy.down = False
    rerun = run_module("kms_key_version", dict(key_id=alias, version=2, state="primary"), proxy.url, tmp_dir=tmp_path)
    assert rerun["changed"] and rerun["key"]["primary_version"] == 2
    assert [v["version"] for v in rerun["key"]["versions"]] == [1, 2]  # no second version 2
    assert json.dumps(rerun).count(SECRET) == 0
