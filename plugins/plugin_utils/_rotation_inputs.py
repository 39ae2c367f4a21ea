# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where each input of a rotation comes from: one table, read on the controller.

Each input has a role variable (``rotation_*``, for a play that includes the role), a playbook
variable (the runbook's name: ``kms_key_id``, ``env``...), optionally runbook environment
variables (``KMS_KEY_ID``...) and a default. The first one set wins, in that order. Host and
group vars of a key host (the group ``kms_keys``) are ordinary variables of that host, so a
many-key inventory needs nothing more: nothing in ``playbooks/rotate.yml`` shadows them.

The controller's environment is read here, in Python, so no playbook does
``lookup('ansible.builtin.env', ...)``; the table is the one place an input is named.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from ansible.module_utils.parsing.convert_bool import boolean


class Input(NamedTuple):
    name: str              # the playbook variable (the runbook's name)
    default: object = ""
    env: tuple = ()         # runbook environment variables, first set wins
    role_var: str = ""      # the role variable, when not rotation_<name without kms_>
    kind: str = "raw"       # bool, int, list (a list or a comma-separated string) or raw

    @property
    def role_name(self) -> str:
        if self.role_var:
            return self.role_var
        return self.name if self.name.startswith("rotation_") else "rotation_" + self.name.removeprefix("kms_")


HOOKS = ("preflight", "stage", "validate", "rollback")

INPUTS = (
    Input("env"),
    Input("confirm_production", False, kind="bool"),
    Input("kms_provider", "local"),
    Input("kms_store_path", env=("ALFRED_TEE_KMS_STORE",)),
    Input("kms_aws_region", env=("AWS_REGION", "AWS_DEFAULT_REGION")),
    Input("kms_aws_endpoint_url", env=("AWS_ENDPOINT_URL",)),
    Input("kms_key_id", env=("KMS_KEY_ID",)),
    Input("kms_key_version", env=("KMS_KEY_VERSION",)),
    Input("next_kms_key_version", env=("NEXT_KMS_KEY_VERSION",), role_var="rotation_next_key_version"),
    Input("kms_allowed_measurements", env=("KMS_ALLOWED_MEASUREMENTS",)),
    Input("kms_measurement_format", "sha384"),
    Input("kms_measurement_labels", {}),
    Input("kms_enclave_urls", [], kind="list"),
    Input("kms_probe_enclave_urls", [], kind="list"),
    *(Input(f"rotation_{hook}_cmd", env=(f"ALFRED_ROTATION_{hook.upper()}_CMD",)) for hook in HOOKS),
    Input("rotation_hook_timeout", 900, kind="int"),
    Input("api_healthcheck_url", env=("ALFRED_ROTATION_API_HEALTHCHECK_URL",)),
    Input("enclave_healthcheck_url", env=("ALFRED_ROTATION_ENCLAVE_HEALTHCHECK_URL",)),
    Input("health_retries", 3, kind="int"),
    Input("health_delay", 2, kind="int"),
    Input("attestation_format", "alfred"),
    Input("attestation_trust", {}),
    Input("rotation_log_files", [], kind="list"),
    Input("auto_rollback", True, kind="bool"),
    Input("show_commands", False, kind="bool"),
    Input("allow_no_evidence", False, kind="bool"),
    Input("allow_http_enclaves", False, kind="bool"),
    Input("allow_kms_accepted_only", False, kind="bool"),
    Input("lock_ttl", 3600, kind="int"),
    Input("break_stale_lock", False, kind="bool"),
    Input("break_lock_owner"),
    Input("force_rollback", False, kind="bool"),
    Input("force_rollback_reason"),
    Input("probe_timeout", 5, kind="int"),
)
BY_NAME = {i.name: i for i in INPUTS}
# The variables the role documents (meta/argument_specs.yml), generated from this table.
ROLE_VARS = tuple(i.role_name for i in INPUTS) + ("rotation_action",)


def _as(kind: str, value, name: str):
    if kind == "bool":
        return boolean(value, strict=False)
    if kind == "int":
        try:
            return int(str(value).strip())
        except ValueError:
            raise ValueError(f"Could not validate input {name}: '{value}' is not a whole number") from None
    if kind == "list":  # -e and AWX surveys give comma-separated text
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return list(value or [])
    return value


def _unset(value) -> bool:
    return value is None or (isinstance(value, str) and value == "")


def resolve(variables, template, environ=None) -> dict:
    """Every input by its playbook name: role variable, else playbook variable, else environment, else default.

    ``variables`` are the task's variables (unrendered), ``template`` renders one of them."""
    environ = os.environ if environ is None else environ
    out = {}
    for item in INPUTS:
        value = None
        for var in (item.role_name, item.name):
            if var in variables:
                value = template(variables[var])
                if not _unset(value):
                    break
        if _unset(value):
            value = next((environ[e] for e in item.env if environ.get(e)), None)
        out[item.name] = _as(item.kind, item.default if _unset(value) else value, item.name)
    return out


def action(variables, template) -> tuple:
    """The step to run (``rotation_action``; ``action``, its deprecated name) and a conflict between the two."""
    given = template(variables.get("rotation_action", "")) or ""
    old = template(variables.get("action", "")) if "action" in variables else ""
    old = old if isinstance(old, str) else ""
    conflict = None
    if given and old and str(given) != old:
        conflict = f"Could not validate input rotation_action: it is '{given}' but the deprecated variable action is '{old}'; give only rotation_action."
    return str(given or old or "all"), conflict


def hook_command(variables, template, step: str, environ=None) -> str:
    """The command of one hook, from the same table (read by the hook task itself, never kept in the plan)."""
    item = BY_NAME[f"rotation_{step}_cmd"]
    one = resolve({k: variables[k] for k in (item.role_name, item.name) if k in variables}, template, environ)
    return str(one[item.name] or "")
