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
    shape: str = "raw"      # bool, int, list (a list or a comma-separated string) or raw
    doc: str = ""           # one line for the role's argument specs

    @property
    def role_name(self) -> str:
        if self.role_var:
            return self.role_var
        return self.name if self.name.startswith("rotation_") else "rotation_" + self.name.removeprefix("kms_")


HOOKS = ("preflight", "stage", "validate", "rollback")

INPUTS = (
    Input("env", doc="Target environment, V(staging) or V(production) (required)."),
    Input("confirm_production", False, shape="bool", doc="Must be V(true) for a production run."),
    Input("kms_provider", "local", doc="V(local), V(aws), V(vault) or V(command) (the hooks rotate the key)."),
    Input("kms_store_path", env=("ALFRED_TEE_KMS_STORE",), doc="The local provider's key store (E(ALFRED_TEE_KMS_STORE))."),
    Input("kms_aws_region", env=("AWS_REGION", "AWS_DEFAULT_REGION"), doc="The AWS region (E(AWS_REGION), E(AWS_DEFAULT_REGION))."),
    Input("kms_aws_endpoint_url", env=("AWS_ENDPOINT_URL",), doc="The AWS KMS endpoint (E(AWS_ENDPOINT_URL))."),
    Input("kms_key_id", env=("KMS_KEY_ID",), doc="The key to rotate (E(KMS_KEY_ID))."),
    Input("kms_key_version", env=("KMS_KEY_VERSION",), doc="The current primary version (E(KMS_KEY_VERSION))."),
    Input("next_kms_key_version", env=("NEXT_KMS_KEY_VERSION",), role_var="rotation_next_key_version",
          doc="The version to rotate to (E(NEXT_KMS_KEY_VERSION))."),
    Input("kms_allowed_measurements", env=("KMS_ALLOWED_MEASUREMENTS",),
          doc="The target allow-list, a list or comma-separated, entries optionally C(name=hex) (E(KMS_ALLOWED_MEASUREMENTS))."),
    Input("kms_measurement_format", "sha384", doc="How measurements are validated (V(sha384), V(sha256), V(opaque))."),
    Input("kms_measurement_labels", {}, doc="Names of measurements, C({label: measurement}), for diffs, the summary and errors."),
    Input("kms_enclave_urls", [], shape="list",
          doc="The live enclaves, a list or comma-separated; unset, the C(enclave_url) of the inventory group C(enclaves)."),
    Input("kms_probe_enclave_urls", [], shape="list", doc="Enclaves running a disallowed measurement; unset, the inventory group C(probe_enclaves)."),
    *(Input(f"rotation_{hook}_cmd", env=(f"ALFRED_ROTATION_{hook.upper()}_CMD",),
            doc=f"The {hook} hook's command (E(ALFRED_ROTATION_{hook.upper()}_CMD)); secret unless show_commands.")
      for hook in HOOKS),
    Input("rotation_hook_timeout", 900, shape="int", doc="Seconds before a hook is stopped and counted as failed."),
    Input("api_healthcheck_url", env=("ALFRED_ROTATION_API_HEALTHCHECK_URL",),
          doc="The token API health URL, which must answer HTTP 200 (E(ALFRED_ROTATION_API_HEALTHCHECK_URL))."),
    Input("enclave_healthcheck_url", env=("ALFRED_ROTATION_ENCLAVE_HEALTHCHECK_URL",),
          doc="The enclave health URL (E(ALFRED_ROTATION_ENCLAVE_HEALTHCHECK_URL))."),
    Input("health_retries", 3, shape="int", doc="Attempts of each health check."),
    Input("health_delay", 2, shape="int", doc="Seconds between health check attempts."),
    Input("attestation_format", "alfred", doc="The enclaves' evidence format."),
    Input("attestation_trust", {}, doc="Trust anchors for the live attestation; unset, those kept with the key."),
    Input("rotation_log_files", [], shape="list", doc="Log files scanned for new secret-redaction findings between preflight and validate."),
    Input("auto_rollback", True, shape="bool", doc="Roll back to the snapshot when stage or validate fails."),
    Input("show_commands", False, shape="bool", doc="Let hook command text appear in results and evidence."),
    Input("allow_no_evidence", False, shape="bool", doc="Let a live run change the key without an evidence bundle (recorded when there is one)."),
    Input("allow_http_enclaves", False, shape="bool", doc="Allow plain C(http://) enclave URLs in production."),
    Input("allow_kms_accepted_only", False, shape="bool", doc="Accept a probe the KMS accepted without an enclave decrypt (recorded)."),
    Input("lock_ttl", 3600, shape="int", doc="Seconds the rotation lock lives without renewal."),
    Input("break_stale_lock", False, shape="bool", doc="Take over an expired lock of another owner."),
    Input("break_lock_owner", doc="Break this owner's lock (rotation_action=rollback only)."),
    Input("force_rollback", False, shape="bool", doc="Restore the snapshot even when a live enclave would lose its measurement (rollback only)."),
    Input("force_rollback_reason", doc="Why the rollback is forced; recorded in the evidence."),
    Input("probe_timeout", 5, shape="int", doc="Seconds each enforcement probe waits for its enclave."),
)
BY_NAME = {i.name: i for i in INPUTS}
# The variables the role documents (meta/argument_specs.yml), generated from this table.
ROLE_VARS = tuple(i.role_name for i in INPUTS) + ("rotation_action",)


def _as(shape: str, value, name: str):
    if shape == "bool":
        return boolean(value, strict=False)
    if shape == "int":
        try:
            return int(str(value).strip())
        except ValueError:
            raise ValueError(f"Could not validate input {name}: '{value}' is not a whole number") from None
    if shape == "list":  # -e and AWX surveys give comma-separated text
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return list(value or [])
    return value


def _unset(value) -> bool:
    return value is None or (isinstance(value, str) and value == "")


def resolve_one(item: Input, variables, template, environ=None):
    """One input: its role variable, else its playbook variable, else the environment, else its default."""
    environ = os.environ if environ is None else environ
    value = None
    for var in (item.role_name, item.name):
        if var in variables:
            value = template(variables[var])
            if not _unset(value):
                break
    if _unset(value):
        value = next((environ[e] for e in item.env if environ.get(e)), None)
    return _as(item.shape, item.default if _unset(value) else value, item.name)


def resolve(variables, template, environ=None) -> dict:
    """Every input by its playbook name (resolve_one each).

    ``variables`` are the task's variables (unrendered), ``template`` renders one of them."""
    return {item.name: resolve_one(item, variables, template, environ) for item in INPUTS}


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
    return str(resolve_one(BY_NAME[f"rotation_{step}_cmd"], variables, template, environ) or "")
