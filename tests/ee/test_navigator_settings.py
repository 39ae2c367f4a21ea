# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ansible-navigator.yml: valid against navigator's settings schema (the copy ansible-lint ships
and validates the file with), the image the EE build tags, and every environment variable the
rotation reads passed into the container (a variable left out would silently be empty there).

Run: .venv/bin/python -m pytest tests/ee/test_navigator_settings.py
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml
from ansiblelint import schemas

from ansible_collections.alfred.tee_kms.plugins.plugin_utils import _rotation_inputs as rotation_input_table

REPO = Path(__file__).resolve().parents[2]
SETTINGS = yaml.safe_load((REPO / "ansible-navigator.yml").read_text())["ansible-navigator"]
EE = SETTINGS["execution-environment"]


def test_settings_follow_the_navigator_schema():
    schema = json.loads((Path(schemas.__file__).parent / "ansible-navigator-config.json").read_text())
    jsonschema.validate({"ansible-navigator": SETTINGS}, schema)
    # And an unknown key is refused by that schema (the check can fail).
    bad = {"ansible-navigator": dict(SETTINGS, **{"execution-environment": dict(EE, pull_policy="missing")})}
    assert not jsonschema.Draft7Validator(schema).is_valid(bad)


def test_the_image_is_the_one_the_ee_build_tags():
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    assert EE["enabled"] is True and EE["image"] == f"localhost/alfred-tee-kms-ee:{version}"
    assert f"alfred-tee-kms-ee:{version}" in (REPO / "docs" / "awx.md").read_text()


def test_every_variable_the_rotation_reads_is_passed_into_the_container():
    # The runbook's environment as the input table reads it, and ALFRED_ENV (rotation_plan reads it).
    read = {name for item in rotation_input_table.INPUTS for name in item.env} | {"ALFRED_ENV"}
    assert {"KMS_KEY_ID", "ALFRED_TEE_KMS_STORE", "ALFRED_ENV"} <= read
    read.add("ALFRED_EVIDENCE_SIGNING_KEY")  # the evidence callback's signing key option
    assert read <= set(EE["environment-variables"]["pass"])
    assert EE["environment-variables"]["set"]["ANSIBLE_CALLBACKS_ENABLED"] == "alfred.tee_kms.evidence"
    assert SETTINGS["playbook-artifact"]["enable"] is False
