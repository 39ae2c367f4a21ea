# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The refusals of a whole run, in their order: bad input first, then the run, then what is missing."""

from __future__ import annotations

from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.admission import refusal, twins


def key(key_id, **extra):
    return {"action": "all", "key_id": key_id, "native": True, "key_identities": [f"local|/s|{key_id}"],
            "has_enclaves": True, **extra}


def test_a_key_named_twice_stops_every_key_of_the_run():
    plans = {"k1": key("a"), "k2": key("b"), "k3": key("a")}
    assert twins(plans) == ["k1", "k3"]
    for host in plans:
        assert "the hosts k1, k3 of the group kms_keys name the same key" in refusal(host, plans, {})


def test_a_key_named_twice_by_another_identity_is_found():
    plans = {"k1": key("a", key_identities=["aws|r|alias/x", "arn:1"]), "k2": key("b", key_identities=["aws|r|alias/y", "arn:1"])}
    assert twins(plans) == ["k1", "k2"]


def test_bad_input_is_named_before_the_run_and_a_refused_key_is_no_twin():
    plans = {"k1": key("a", refused="Could not validate input env: 'x' is not one of staging, production"), "k2": key("a")}
    assert refusal("k1", plans, {}).startswith("Could not validate input env")
    assert refusal("k2", plans, {}) is None


def test_awx_slicing_and_an_empty_slice_are_refused():
    assert "job slicing splits" in refusal("k1", {"k1": key("a", enclaves_from_hosts=True)}, {"awx": True, "in_kms_keys": True})
    assert refusal("k1", {"k1": key("a", enclaves_from_hosts=True)}, {"in_kms_keys": True}) is None
    message = refusal("localhost", {"localhost": key("a")}, {"awx": True, "kms_keys_empty": True, "all_hosts": ["e1", "e2"]})
    assert "dealt only other hosts: e1, e2" in message


def test_a_live_run_without_evidence_is_refused_unless_allowed_or_rehearsed():
    context = {"evidence_cause": "the alfred.tee_kms.evidence callback is not enabled"}
    assert "no evidence bundle records this run (the alfred.tee_kms.evidence callback is not enabled)" in refusal("h", {"h": key("a")}, context)
    assert refusal("h", {"h": key("a")}, dict(context, check_mode=True)) is None
    assert refusal("h", {"h": key("a", allow_no_evidence=True)}, context) is None


def test_a_native_change_without_enclaves_is_refused_but_a_validate_alone_is_not():
    assert "no enclave to prove the change against" in refusal("h", {"h": key("a", has_enclaves=False)}, {})
    assert "Could not roll back key 'a'" in refusal("h", {"h": key("a", has_enclaves=False, action="rollback")}, {})
    assert refusal("h", {"h": key("a", has_enclaves=False, action="validate")}, {}) is None
    assert refusal("h", {"h": key("a", has_enclaves=False, native=False)}, {}) is None
