# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Many keys in one run: one inventory host per key in the group kms_keys (issue 15).

Real ansible-playbook runs of playbooks/rotate.yml against the simulated fleet; the keys share
one local store file, so parallel workers really contend for it. Each key must end exactly where
its own run took it: a failing key rolled back alone, the others rotated, nothing half-changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_support import BIN, M_CURRENT, M_NEW, PLAYBOOK, REPO, RUNBOOK_ENV_PREFIXES, TARGET

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.verify import verify_bundle
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local import LocalKmsProvider

KEYS = ["tokens/k1", "tokens/k2", "tokens/k3"]


class Fleetwide:
    """A store holding several keys and an inventory with one kms_keys host per key."""

    def __init__(self, tmp_path: Path, fleet, trust: dict):
        self.tmp, self.fleet, self.trust = tmp_path, fleet, trust
        store_dir = tmp_path / "kms"
        store_dir.mkdir(mode=0o700)
        self.store = store_dir / "store.json"
        self.provider = LocalKmsProvider(str(self.store))
        for key_id in KEYS:
            self.provider.create_key(key_id, [M_CURRENT], "sha384", trust)
        self.evidence = tmp_path / "evidence"

    def inventory(self, hosts: dict, group_vars: dict | None = None, enclave_hosts: bool = True) -> str:
        urls = self.fleet.urls
        keys_vars = {"kms_store_path": str(self.store), "kms_key_version": 1, "next_kms_key_version": 2,
                     "kms_allowed_measurements": f"{M_CURRENT},{M_NEW}", **(group_vars or {})}
        data = {"all": {"children": {"kms_keys": {"hosts": hosts, "vars": keys_vars}}}}
        if enclave_hosts:
            data["all"]["children"]["enclaves"] = {"hosts": {n: {"enclave_url": urls[n]} for n in ("enclave-1", "enclave-2", "enclave-3")}}
            data["all"]["children"]["probe_enclaves"] = {"hosts": {"probe-1": {"enclave_url": urls["probe-1"]}}}
        else:  # what a sliced AWX job keeps whole: the enclaves as group vars of kms_keys
            keys_vars["kms_enclave_urls"] = [urls[n] for n in ("enclave-1", "enclave-2", "enclave-3")]
            keys_vars["kms_probe_enclave_urls"] = urls["probe-1"]
        path = self.tmp / f"inventory-{len(list(self.tmp.glob('inventory-*')))}.json"
        path.write_text(json.dumps(data))
        return str(path)

    def run(self, inventory: str, *args, extra_env=None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(RUNBOOK_ENV_PREFIXES)}
        env.update({"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
                    "PATH": str(BIN) + os.pathsep + env.get("PATH", ""), **(extra_env or {})})
        cmd = [str(BIN / "ansible-playbook"), "-i", inventory, str(PLAYBOOK), "-e", "env=staging",
               "-e", json.dumps({"attestation_trust": self.trust}), "-e", f"evidence_dir={self.evidence}",
               "-e", "health_retries=0", "-e", "health_delay=0", *args]
        return subprocess.run(cmd, env=env, cwd=str(self.tmp), capture_output=True, text=True, timeout=300, check=False)

    def state(self, key_id: str) -> dict:
        raw = self.provider.describe_key(key_id)
        return {"primary": raw["primary_version"], "versions": sorted(v["version"] for v in raw["versions"]),
                "allowed": sorted(raw["allowed_measurements"]), "lock": raw.get("lock"),
                "snapshot_status": (raw.get("snapshot") or {}).get("status")}

    def assert_every_key(self, expected: dict, keys=None) -> None:
        for key_id in keys or KEYS:
            assert self.state(key_id) == expected, key_id

    def bundles(self) -> list:
        return sorted(p for p in self.evidence.iterdir() if p.is_dir()) if self.evidence.exists() else []

    def summary(self) -> dict:
        bundles = self.bundles()
        assert len(bundles) == 1, bundles
        return json.loads((bundles[0] / "summary.json").read_text())


@pytest.fixture
def keys(tmp_path, fleet, trust):
    return Fleetwide(tmp_path, fleet, trust)


def _hosts(**overrides) -> dict:
    hosts = {f"key{i + 1}": {"kms_key_id": key_id} for i, key_id in enumerate(KEYS)}
    for host, extra in overrides.items():
        hosts[host].update(extra)
    return hosts


ROTATED = {"primary": 2, "versions": [1, 2], "allowed": TARGET, "lock": None, "snapshot_status": "completed"}
UNTOUCHED = {"primary": 1, "versions": [1], "allowed": [M_CURRENT], "lock": None, "snapshot_status": None}


def test_three_keys_rotated_in_one_run_each_with_its_own_result(keys):
    run = keys.run(keys.inventory(_hosts()), "-f", "3")
    assert run.returncode == 0, run.stdout + run.stderr
    keys.assert_every_key(ROTATED)
    summary = keys.summary()
    assert summary["outcome"] == "success"
    assert summary["key_id"] is None and summary["key_ids"] == KEYS
    assert [(k["host"], k["key_id"], k["outcome"]) for k in summary["keys"]] == [
        ("key1", "tokens/k1", "success"), ("key2", "tokens/k2", "success"), ("key3", "tokens/k3", "success")]
    for entry in summary["keys"]:
        assert entry["versions"]["primary_before"] == 1 and entry["versions"]["primary_after"] == 2
        assert sorted(entry["allowed_measurements"]["after"]) == TARGET
        # Each key's own attestation of the fleet (preflight and validate), not another key's.
        assert {a["host"] for a in entry["attestation"]} == {entry["host"]}
        assert len(entry["attestation"]) >= 2
    assert verify_bundle(str(keys.bundles()[0]))["verified"]
    report = (keys.bundles()[0] / "report.html").read_text()
    assert 'id="keys"' in report and report.count("tokens/k") >= 6
    assert "key key2 (tokens/k2, local): SUCCESS" in run.stdout
    # Idempotent: a second run finds every key rotated and changes nothing.
    again = keys.run(keys.inventory(_hosts()))
    assert again.returncode == 0, again.stdout + again.stderr
    keys.assert_every_key(ROTATED)


def test_one_keys_failure_rolls_back_that_key_only(keys):
    failing = f"{sys.executable} -c 'import sys; sys.exit(3)'"
    run = keys.run(keys.inventory(_hosts(key2={"rotation_stage_cmd": failing})), "-f", "3")
    assert run.returncode == 2, run.stdout + run.stderr
    keys.assert_every_key(ROTATED, keys=["tokens/k1", "tokens/k3"])
    # k2 created version 2 and widened its allow-list before its stage hook failed: the rollback
    # restores its primary and keeps every version (data encrypted under 2 stays decryptable).
    k2 = keys.state("tokens/k2")
    assert (k2["primary"], k2["lock"], k2["snapshot_status"]) == (1, None, "rolled_back"), k2
    summary = keys.summary()
    outcomes = {k["host"]: k["outcome"] for k in summary["keys"]}
    assert outcomes == {"key1": "success", "key2": "rolled_back", "key3": "success"}
    assert summary["outcome"] == "rolled_back"
    key2 = next(k for k in summary["keys"] if k["host"] == "key2")
    assert key2["rollback_executed"] and key2["failed_tasks"], key2
    assert summary["rollback"] == {"executed": True, "keys": ["key2"]}
    assert "The all of key 'tokens/k2' failed at" in run.stdout
    assert verify_bundle(str(keys.bundles()[0]))["verified"]


def test_a_key_listed_twice_stops_every_key_before_any_change(keys):
    hosts = _hosts()
    hosts["key1-again"] = {"kms_key_id": "tokens/k1"}
    run = keys.run(keys.inventory(hosts))
    assert run.returncode != 0
    keys.assert_every_key(UNTOUCHED)
    assert "the hosts key1, key1-again of the group kms_keys name the same key" in " ".join(run.stdout.split())
    summary = keys.summary()
    assert summary["outcome"] == "failed"
    assert all(k["outcome"] == "failed" for k in summary["keys"])


def test_many_key_rehearsal_changes_nothing(keys):
    run = keys.run(keys.inventory(_hosts()), "--check", "--diff")
    assert run.returncode == 0, run.stdout + run.stderr
    keys.assert_every_key(UNTOUCHED)
    summary = keys.summary()
    assert summary["check_mode"] is True and [k["outcome"] for k in summary["keys"]] == ["success"] * 3


def test_many_keys_under_awx_refuse_enclaves_read_from_inventory_hosts(keys):
    run = keys.run(keys.inventory(_hosts()), "-e", "awx_job_id=42")
    assert run.returncode != 0
    keys.assert_every_key(UNTOUCHED)
    assert "must be listed in kms_enclave_urls (and probe enclaves in kms_probe_enclave_urls)" in " ".join(run.stdout.split())
    # The same job with the enclaves in kms_enclave_urls (what a sliced job keeps whole) rotates.
    ok = keys.run(keys.inventory(_hosts(), enclave_hosts=False), "-e", "awx_job_id=43")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    keys.assert_every_key(ROTATED)


def test_a_secret_in_one_keys_host_vars_reaches_no_output(keys):
    secret = "Zq7tK2pW9mXv4LbN8sRc"
    hosts = _hosts(key2={"rotation_stage_cmd": f"true --api-token={secret}", "kms_deploy_password": secret + "-pw"})
    # -v prints every task's result (AWX keeps them all in its job events): the tasks that copy a
    # key's inputs into facts must not show them.
    run = keys.run(keys.inventory(hosts), "-v")
    assert run.returncode == 0, run.stdout + run.stderr
    assert secret not in run.stdout + run.stderr
    bundle = keys.bundles()[0]
    for path in bundle.iterdir():
        assert secret not in path.read_text(encoding="utf-8"), path.name
    key2 = next(k for k in keys.summary()["keys"] if k["host"] == "key2")
    assert [h["outcome"] for h in key2["hooks"] if h["name"] == "stage"] == ["ok"]


def test_many_keys_under_awx_refuse_probe_enclaves_read_from_inventory_hosts(keys):
    path = Path(keys.inventory(_hosts(), enclave_hosts=False))
    data = json.loads(path.read_text())
    data["all"]["children"]["kms_keys"]["vars"].pop("kms_probe_enclave_urls")
    data["all"]["children"]["probe_enclaves"] = {"hosts": {"probe-1": {"enclave_url": keys.fleet.urls["probe-1"]}}}
    path.write_text(json.dumps(data))
    run = keys.run(str(path), "-e", "awx_job_id=44")
    assert run.returncode != 0
    keys.assert_every_key(UNTOUCHED)
    assert "kms_probe_enclave_urls" in run.stdout


def test_an_awx_slice_dealt_no_key_host_refuses_the_single_key_fallback(keys):
    """AWX keeps a group with vars even when a slice gives it no host: that slice must not rotate
    the key named by the environment."""
    path = Path(keys.inventory({}, enclave_hosts=False))
    data = json.loads(path.read_text())
    data["all"]["hosts"] = {"probe-9": {"enclave_url": keys.fleet.urls["probe-1"]}}
    path.write_text(json.dumps(data))
    env = {"KMS_KEY_ID": "tokens/k1", "ALFRED_TEE_KMS_STORE": str(keys.store), "KMS_KEY_VERSION": "1",
           "NEXT_KMS_KEY_VERSION": "2", "KMS_ALLOWED_MEASUREMENTS": f"{M_CURRENT},{M_NEW}"}
    run = keys.run(str(path), "-e", "awx_job_id=45", extra_env=env)
    assert run.returncode != 0
    keys.assert_every_key(UNTOUCHED)
    assert "this AWX job holds no host of the group kms_keys" in " ".join(run.stdout.split())


def test_runbook_wrapper_keeps_each_keys_own_provider(keys):
    """The runbook wrapper with a kms_keys inventory: without ALFRED_KMS_PROVIDER it passes no
    provider, so key2's own kms_provider (aws, at an endpoint that refuses connections) is used and
    fails that key alone before any change; an extra var would have rotated it as a local key."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    hosts = _hosts(key2={"kms_provider": "aws", "kms_aws_region": "us-east-1",
                         "kms_aws_endpoint_url": f"http://127.0.0.1:{closed}"})
    env = {k: v for k, v in os.environ.items() if not k.startswith(RUNBOOK_ENV_PREFIXES)}
    env.update({"ANSIBLE_NOCOLOR": "1", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEEXAMPLE00", "AWS_SECRET_ACCESS_KEY": "x" * 40,
                "AWS_MAX_ATTEMPTS": "1", "AWS_EC2_METADATA_DISABLED": "true"})
    env.pop("ALFRED_KMS_PROVIDER", None)
    env.pop("KMS_KEY_ID", None)
    run = subprocess.run([str(REPO / "scripts" / "security" / "tee-kms-rotation.sh"), "all", "--env", "staging",
                          "--evidence-dir", str(keys.evidence), "--", "-i", keys.inventory(hosts),
                          "-e", json.dumps({"attestation_trust": keys.trust}), "-e", "health_retries=0", "-e", "health_delay=0"],
                         env=env, cwd=str(keys.tmp), capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 2, run.stdout[-3000:] + run.stderr[-2000:]
    banner = run.stdout.splitlines()[0]
    assert "the keys of the inventory group kms_keys" in banner and "a key's own kms_provider in the inventory wins" in banner
    assert "kms_provider=" not in next(line for line in run.stdout.splitlines() if ": running " in line)
    keys.assert_every_key(ROTATED, keys=["tokens/k1", "tokens/k3"])
    keys.assert_every_key(UNTOUCHED, keys=["tokens/k2"])
    entries = {k["host"]: k for k in keys.summary()["keys"]}
    assert entries["key2"]["provider"] == "aws" and entries["key2"]["outcome"] == "failed"
    assert entries["key1"]["outcome"] == entries["key3"]["outcome"] == "success"
