# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Plain-http enclave URLs (issue 22 item 13): a production run refuses them before any change
unless the operator allows them by name (allow_http_enclaves=true, recorded in the evidence); a
staging run warns on stdout and in run.log. The simulated fleet serves plain http, as an enclave
fleet reached without TLS would."""

from __future__ import annotations

import json
import re

import pytest

from workflow_support import KEY_ID, ROTATED

INPUTS = "alfred.tee_kms.rotation : Validate the rotation inputs and refuse a run that must not start"


def newest(runner, before: set):
    new = [p.parent for p in runner.evidence_dir.glob("*/summary.json") if p not in before]
    assert len(new) == 1, new
    return json.loads((new[0] / "summary.json").read_text()), (new[0] / "run.log").read_text()


def bundles(runner) -> set:
    return set(runner.evidence_dir.glob("*/summary.json"))


def fleet_urls(fleet) -> list:
    return [fleet.urls[name] for name in ("enclave-1", "enclave-2", "enclave-3", "probe-1")]


@pytest.mark.parametrize("action", ["all", "rollback"])
def test_production_refuses_http_enclave_urls_before_any_change(key, runner, fleet, action):
    stored = key.store_bytes()
    result = runner.run(["-e", "confirm_production=true", "-e", f"rotation_action={action}"], env_name="production",
                        versions=action != "rollback")
    assert result.rc == 2, result.output
    assert result.failed_tasks() == [INPUTS], result.output
    # The probe enclave counts too: validate calls it only after stage has changed the key.
    assert result.messages() == [
        f"Could not attest enclave {fleet.urls['enclave-1']}: production enclave URLs must use https (3 other enclave URL(s) "
        "use http too) (set allow_http_enclaves=true to allow it; the run records it)"]
    assert key.store_bytes() == stored


def test_production_allows_http_enclaves_by_name_and_records_it(key, runner, fleet):
    before = bundles(runner)
    result = runner.run(["-e", "confirm_production=true", "-e", "allow_http_enclaves=true"], env_name="production")
    assert result.rc == 0, result.output
    assert key.state() == ROTATED
    summary, run_log = newest(runner, before)
    context = summary["run_context"]
    assert context["env"] == "production" and context["key_id"] == KEY_ID
    assert context["allow_http_enclaves"] is True and context["http_enclave_urls"] == fleet_urls(fleet)
    warning = (f"Enclave URL(s) {', '.join(fleet_urls(fleet))} use plain http, allowed in production by allow_http_enclaves=true "
               "(recorded in the evidence)")
    assert warning in result.flat
    assert re.search(r"\] WARNING \[localhost\] " + re.escape(f"{INPUTS}: {warning}"), run_log)
    assert [w["task"] for w in summary["warnings"]] == [INPUTS] and warning in summary["warnings"][0]["message"]


def test_staging_warns_about_http_enclave_urls(key, runner, fleet):
    before = bundles(runner)
    result = runner.run()
    assert result.rc == 0, result.output
    assert key.state() == ROTATED
    summary, run_log = newest(runner, before)
    assert summary["run_context"]["allow_http_enclaves"] is False
    assert summary["run_context"]["http_enclave_urls"] == fleet_urls(fleet)
    warning = (f"Enclave URL(s) {', '.join(fleet_urls(fleet))} use plain http: attestation, canary and health answers and any "
               "credentials in the URLs travel unencrypted (allowed in staging; a production run refuses them unless "
               "allow_http_enclaves=true)")
    assert f"[WARNING]: {warning}" in result.flat
    assert re.search(r"\] WARNING \[localhost\] " + re.escape(f"{INPUTS}: {warning}"), run_log)
    assert f"  {warning}" in result.stdout.split("warnings:\n", 1)[1]  # the end-of-run summary lists it
