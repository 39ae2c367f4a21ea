# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 22 item 14: creating a key never changes a production key without confirm_production, and
creating a key that exists never replaces its trust, allow-list or environment silently (DESIGN.md
invariant 8). Real runs of playbooks/create_key.yml and of rotate.yml -e rotation_action=create
against an existing production key in a real local store."""

from __future__ import annotations

import base64
import json
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from workflow_support import KEY_ID, M_CURRENT, PLAYBOOK

CREATE = str(PLAYBOOK.with_name("create_key.yml"))
REFUSE = "Refuse a production create without confirm_production"
ONLY_CURRENT = {"KMS_ALLOWED_MEASUREMENTS": M_CURRENT}


@pytest.fixture
def production_key(key):
    key.provider.record_env(KEY_ID, "production")
    return key


def create(runner, args=(), env=None, playbook=CREATE) -> subprocess.CompletedProcess:
    """Run create_key.yml (or rotate.yml with rotation_action=create) for env=production."""
    command = runner.command(args, env_name="production")
    if playbook == CREATE:
        command[command.index(str(PLAYBOOK))] = CREATE
    else:
        command += ["-e", "rotation_action=create"]
    return subprocess.run(command, env=runner.env(dict(ONLY_CURRENT, **(env or {}))), cwd=str(runner.workdir),
                          capture_output=True, text=True, timeout=240, check=False)


def flat(run) -> str:
    return " ".join((run.stdout + run.stderr).replace("-\n", "-").split())


def other_trust() -> dict:
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"public_keys": [base64.b64encode(raw).decode()]}


@pytest.mark.parametrize("playbook", [CREATE, "rotate.yml"], ids=["create_key.yml", "rotate.yml"])
def test_creating_a_production_key_needs_confirm_production(production_key, runner, playbook):
    """Before: an existing production key's create without confirm_production ran, and replaced its trust."""
    before = production_key.store_bytes()
    for args in ((), ("--check", "--diff"), ("-e", json.dumps({"attestation_trust": other_trust()}))):
        run = create(runner, args, playbook=playbook)
        assert run.returncode == 2, run.stdout[-3000:]
        assert f"TASK [{REFUSE}]" in run.stdout
        assert (f"Could not create key '{KEY_ID}' for env production: confirm_production=true (--confirm-production) is required "
                "for every change of a production key. Nothing was changed.") in flat(run)
        assert production_key.store_bytes() == before


def test_creating_an_existing_production_key_never_replaces_its_trust_silently(production_key, runner):
    before = production_key.store_bytes()
    trust = production_key.raw()["attestation_trust"]
    same = create(runner, ["-e", "confirm_production=true"])
    assert same.returncode == 0, same.stdout[-3000:]
    assert f"Key '{KEY_ID}' already exists: primary version 1" in flat(same)
    assert production_key.store_bytes() == before

    new = other_trust()
    replaced_trust = ["-e", "confirm_production=true", "-e", json.dumps({"attestation_trust": new})]
    refused = create(runner, replaced_trust, playbook="rotate.yml")
    assert refused.returncode == 2, refused.stdout[-3000:]
    assert (f"Could not create key '{KEY_ID}': it exists with another attestation trust (public_keys: "
            f"{json.dumps(trust['public_keys'])} -> {json.dumps(new['public_keys'])}); nothing was changed. "
            "To replace the key's trust, set update_trust=true (recorded in the evidence)") in flat(refused)
    assert "created" not in flat(refused)
    assert production_key.store_bytes() == before

    updated = create(runner, [*replaced_trust, "-e", "update_trust=true"], playbook="rotate.yml")
    assert updated.returncode == 0, updated.stdout[-3000:]
    assert f"Key '{KEY_ID}' already exists, its attestation trust was replaced (update_trust=true)" in flat(updated)
    assert production_key.raw()["attestation_trust"] == new and production_key.raw()["env"] == "production"
    # Recorded in the evidence bundle of the run.
    bundle = max((p for p in runner.evidence_dir.iterdir() if p.name.startswith("production-create-2")), key=lambda p: p.stat().st_mtime)
    events = [json.loads(line) for line in (bundle / "events.jsonl").read_text().splitlines()]
    changes = [a for e in events for a in (e.get("audit") or []) if a.get("operation") == "set_attestation_trust"]
    assert changes and all(a["update_trust"] is True and a["after"]["attestation_trust"] == new for a in changes), changes


def test_creating_an_existing_key_refuses_another_allow_list_or_env(production_key, runner):
    before = production_key.store_bytes()
    wider = create(runner, ["-e", "confirm_production=true"], env={"KMS_ALLOWED_MEASUREMENTS": f"{M_CURRENT},{'b2' * 48}"})
    assert wider.returncode == 2, wider.stdout[-3000:]
    assert f"Could not create key '{KEY_ID}': it exists with another allow-list (the request adds b2b2b2b2b2b2b2b2... and removes none)" \
        in flat(wider)
    staging = create(runner, ["-e", "env=staging"])
    assert staging.returncode == 2, staging.stdout[-3000:]
    assert (f"Could not change key '{KEY_ID}': it belongs to env 'production', not to the run's env 'staging'; it is only changed "
            "by a run with env=production with confirm_production=true") in flat(staging)
    assert production_key.store_bytes() == before
