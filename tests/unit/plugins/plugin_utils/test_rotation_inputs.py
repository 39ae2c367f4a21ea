# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The input table: every input is read from its role variable, else its playbook variable, else the
runbook's environment, else its default, and the role's argument specs are generated from it."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest
import yaml

from ansible_collections.alfred.tee_kms.plugins.plugin_utils import _rotation_inputs as table
from ansible_collections.alfred.tee_kms.plugins.plugin_utils import _rotation_plan as plan

REPO = pathlib.Path(__file__).resolve().parents[4]


def same(value):
    return value


def test_each_input_is_read_in_order_role_var_playbook_var_environment_default():
    for item in table.INPUTS:
        env = {name: "from-env" for name in item.env}
        by_default = table.resolve({}, same, environ={})[item.name]
        assert by_default == table._as(item.shape, item.default, item.name)
        if item.shape == "raw":
            assert table.resolve({}, same, environ=env)[item.name] == ("from-env" if item.env else item.default)
            assert table.resolve({item.name: "playbook"}, same, environ=env)[item.name] == "playbook"
            if item.role_name != item.name:  # the hook commands and rotation_log_files: one name for both
                assert table.resolve({item.name: "playbook", item.role_name: "role"}, same, environ=env)[item.name] == "role"


def test_an_empty_variable_falls_through_to_the_next_source():
    got = table.resolve({"rotation_key_id": "", "kms_key_id": ""}, same, environ={"KMS_KEY_ID": "tokens/env"})
    assert got["kms_key_id"] == "tokens/env"
    assert table.resolve({"kms_key_id": "tokens/pb"}, same, environ={"KMS_KEY_ID": "tokens/env"})["kms_key_id"] == "tokens/pb"


def test_typed_inputs_accept_the_text_of_extra_vars_and_surveys():
    got = table.resolve({"confirm_production": "true", "lock_ttl": "60", "kms_enclave_urls": "https://a, ,https://b"}, same, environ={})
    assert got["confirm_production"] is True and got["lock_ttl"] == 60 and got["kms_enclave_urls"] == ["https://a", "https://b"]
    with pytest.raises(ValueError, match="Could not validate input lock_ttl: 'soon' is not a whole number"):
        table.resolve({"lock_ttl": "soon"}, same, environ={})


def test_the_first_aws_region_variable_set_wins():
    assert table.resolve({}, same, environ={"AWS_DEFAULT_REGION": "eu-west-1"})["kms_aws_region"] == "eu-west-1"
    assert table.resolve({}, same, environ={"AWS_REGION": "us-east-2", "AWS_DEFAULT_REGION": "eu-west-1"})["kms_aws_region"] == "us-east-2"


def test_rotation_action_and_its_deprecated_name():
    assert table.action({}, same) == ("all", None)
    assert table.action({"action": "rollback"}, same) == ("rollback", None)
    assert table.action({"rotation_action": "stage", "action": "stage"}, same) == ("stage", None)
    chosen, conflict = table.action({"rotation_action": "stage", "action": "rollback"}, same)
    assert chosen == "stage" and conflict == ("Could not validate input rotation_action: it is 'stage' but the deprecated "
                                              "variable action is 'rollback'; give only rotation_action.")


def test_a_hook_command_comes_from_the_same_table_and_never_from_another_hook():
    env = {"ALFRED_ROTATION_STAGE_CMD": "stage-from-env"}
    assert table.hook_command({}, same, "stage", environ=env) == "stage-from-env"
    assert table.hook_command({"rotation_stage_cmd": "stage-var"}, same, "stage", environ=env) == "stage-var"
    assert table.hook_command({"rotation_stage_cmd": "stage-var"}, same, "validate", environ=env) == ""


def test_the_plan_takes_the_checked_key_id_and_the_enclaves_given_before_the_inventory():
    inputs = table.resolve({"env": "staging", "kms_key_id": "tokens/raw", "kms_store_path": "kms/store.json"}, same, environ={})
    urls = plan.enclaves(inputs, ["https://inv-1"], [])
    assert urls == {"enclave_urls": ["https://inv-1"], "probe_enclave_urls": [], "enclaves_from_hosts": True}
    done = plan.complete({"key_id": "tokens/checked", "hook_allowed_measurements": "aa"}, inputs, "all", urls)
    assert done["module_defaults"]["key_id"] == "tokens/checked"
    assert done["module_defaults"]["store_path"] == str(pathlib.Path("kms/store.json").resolve())
    assert done["steps"] == ["preflight", "stage", "validate"]
    assert done["hook_environment"]["KMS_ALLOWED_MEASUREMENTS"] == "aa"
    given = plan.enclaves(dict(inputs, kms_enclave_urls=["https://given"]), ["https://inv-1"], ["https://probe"])
    assert given["enclave_urls"] == ["https://given"] and given["enclaves_from_hosts"] is True  # probes from the inventory
    assert "enclave_urls" not in plan.for_admission(dict(done, **given)) and plan.for_admission(dict(done, **given))["has_enclaves"]


def test_the_role_argument_specs_are_generated_from_the_table():
    spec = importlib.util.spec_from_file_location("role_argument_specs", REPO / "tools" / "role_argument_specs.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.TARGET.read_text(encoding="utf-8") == tool.render(), "run tools/role_argument_specs.py"
    specs = yaml.safe_load(tool.TARGET.read_text(encoding="utf-8"))["argument_specs"]
    assert set(specs["main"]["options"]) == set(table.ROLE_VARS)
    for step in ("preflight", "stage", "validate", "rollback"):
        assert set(specs[step]["options"]) == {"rotation_plan"}
    assert all(specs["main"]["options"][f"rotation_{h}_cmd"]["no_log"] for h in table.HOOKS)
