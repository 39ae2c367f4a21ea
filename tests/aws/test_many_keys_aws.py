# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 22 item 9: a many-key run (inventory group kms_keys) whose hosts name one AWS key with two
spellings of its endpoint is refused before any change, as the same spelling twice is. Two hosts
would otherwise rotate one key twice under one lock owner (the run's), so neither would stop the other.

Real ansible-playbook runs of playbooks/rotate.yml against the session's moto server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from aws_support import M1, M2, REPO, aws_env, new_alias

GUARD = "alfred.tee_kms.rotation : Validate the rotation inputs and refuse a run that must not start"
UNTOUCHED = {"primary": 1, "versions": [1], "allowed": [M1], "lock": None, "snapshot": None}


def state(provider, alias) -> dict:
    key = provider.describe_key(alias)
    return {"primary": key["primary_version"], "versions": [v["version"] for v in key["versions"]],
            "allowed": key["allowed_measurements"], "lock": key.get("lock"), "snapshot": key.get("snapshot")}


def run_many(tmp_path, hosts: dict) -> subprocess.CompletedProcess:
    keys_vars = {"kms_provider": "aws", "kms_key_version": 1, "next_kms_key_version": 2, "kms_allowed_measurements": f"{M1},{M2}"}
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"children": {"kms_keys": {"hosts": hosts, "vars": keys_vars}}}}))
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(REPO / "playbooks" / "rotate.yml"),
           "-e", "env=staging", "-e", f"evidence_dir={tmp_path / 'evidence'}", "-e", "health_retries=0", "-e", "health_delay=0"]
    env = aws_env({"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"})
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=600, check=False)


def refused_hosts(run) -> list:
    """The hosts that failed at the refusal task (the only task that failed)."""
    failed = re.findall(r"^fatal: \[([^\]]+)\]", run.stdout, re.MULTILINE)
    assert f"TASK [{GUARD}]" in run.stdout, run.stdout[-3000:]
    return sorted(failed)


def test_one_aws_key_under_two_spellings_of_its_endpoint_is_refused_before_any_change(tmp_path, provider, moto_url):
    twice, other = new_alias(), new_alias()
    for alias in (twice, other):
        provider.create_key(alias, [M1], "sha384", {"nitro_pcrs": [0]})
    run = run_many(tmp_path, {
        "key1": {"kms_key_id": twice, "kms_aws_endpoint_url": moto_url},
        # The same endpoint with a trailing slash, its scheme and host in capitals.
        "key1-again": {"kms_key_id": twice, "kms_aws_endpoint_url": moto_url.replace("http://", "HTTP://") + "/"},
        "key2": {"kms_key_id": other, "kms_aws_endpoint_url": moto_url},
    })
    assert run.returncode == 2, run.stdout[-3000:] + run.stderr[-2000:]
    assert "the hosts key1, key1-again of the group kms_keys name the same key" in " ".join(run.stdout.split())
    assert "Nothing was changed. List each key once." in " ".join(run.stdout.split())
    assert refused_hosts(run) == ["key1", "key1-again", "key2"]  # every key of the run stops
    assert state(provider, twice) == UNTOUCHED and state(provider, other) == UNTOUCHED


def test_one_aws_key_through_two_endpoint_hosts_is_refused_by_the_key_behind_the_alias(tmp_path, provider, moto_url):
    """127.0.0.1 and localhost are one KMS that no spelling rule can tell: the KMS key ARN behind the alias can."""
    alias = new_alias()
    provider.create_key(alias, [M1], "sha384", {"nitro_pcrs": [0]})
    run = run_many(tmp_path, {
        "key1": {"kms_key_id": alias, "kms_aws_endpoint_url": moto_url},
        "key1-again": {"kms_key_id": alias, "kms_aws_endpoint_url": moto_url.replace("127.0.0.1", "localhost")},
    })
    assert run.returncode == 2, run.stdout[-3000:] + run.stderr[-2000:]
    assert "the hosts key1, key1-again of the group kms_keys name the same key" in " ".join(run.stdout.split())
    assert refused_hosts(run) == ["key1", "key1-again"]
    assert state(provider, alias) == UNTOUCHED
