# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""AWX job slicing of a many-keys rotation: a job template with ``job_slice_count: 2`` over an
inventory of 20 keys (group ``kms_keys``), its two slice jobs run CONCURRENTLY through
``ansible_runner.run_async()``, each on its own private data dir laid out as AWX lays out a job
(tests/integration/awx/test_awx_runner.py: project checkout, credential injectors, the
``awx_*`` extra vars of a slice job) with the inventory AWX would give that slice
(awx_slicing.py).

Nothing is mocked: the keys live in one real local KMS store shared by both jobs (as the keys
of a fleet live in one KMS), the enclaves are real HTTP servers of the enclave simulator serving
signed attestation evidence, the hooks are real shell commands, and each slice writes and signs
its own evidence bundle into one evidence directory.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import ansible_runner
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# The AWX job layout (project checkout, credential injectors, AWX's extra vars) is the one of the
# single-job test; its fixtures and helpers are reused, not copied.
sys.path.insert(0, str(REPO / "tests" / "integration" / "awx"))
sys.path.insert(0, str(REPO / "tools" / "enclave_sim"))

from awx_slicing import slices  # noqa: E402
from fleet import SimulatorFleet  # noqa: E402  (helper outside the collection)
from test_awx_runner import (  # noqa: E402,F401  (fixtures: project, clean_environ, signing_key)
    AWX_VARS,
    Job,
    clean_environ,
    credential_inputs,
    lay_out_job,
    project,
    signing_key,
    write_inventory_json,
)

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.verify import verify_bundle  # noqa: E402
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local import LocalKmsProvider  # noqa: E402

# The fixtures reused from the single-job test: pytest finds them by name in this module.
__all__ = ["clean_environ", "project", "signing_key"]

M_CURRENT = "a1" * 48   # enclave-1: the running image, allowed before and after
M_NEW = "b2" * 48       # enclave-2: the new image every key's rotation adds
ENCLAVES = [{"name": "enclave-1", "measurement": M_CURRENT}, {"name": "enclave-2", "measurement": M_NEW}]
HOSTS = [f"key{n:02d}" for n in range(1, 21)]
KEY_IDS = {host: f"tokens/{host}" for host in HOSTS}
SLICE_COUNT = 2
# The job template's forks: every key of a slice in parallel.
FORKS = 10
WORKFLOW_JOB_ID = 5000  # the workflow job AWX creates for a sliced job template; its slice jobs are 5001, 5002


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with SimulatorFleet(tmp_path_factory.mktemp("sim"), enclaves=ENCLAVES) as running:
        yield running


@pytest.fixture
def key_store(tmp_path, fleet):
    """One store holding the 20 keys at version 1 with the running image allowed, each trusting
    the simulator's attestation key (the trust kept with the key, as playbooks/create_key.yml keeps it)."""
    store_dir = tmp_path / "kms"
    store_dir.mkdir(mode=0o700)
    store = store_dir / "store.json"
    provider = LocalKmsProvider(str(store))
    trust = {"public_keys": [fleet.trust["alfred_public_keys"][0]]}
    for key_id in KEY_IDS.values():
        provider.create_key(key_id, [M_CURRENT], "sha384", attestation_trust=trust, env="staging")
    return store


def key_state(store: Path, key_id: str) -> dict:
    raw = LocalKmsProvider(str(store)).describe_key(key_id)
    return {"primary": raw["primary_version"], "versions": {v["version"]: v["state"] for v in raw["versions"]},
            "allowed": sorted(raw["allowed_measurements"]), "lock": raw.get("lock"),
            "snapshot_status": (raw.get("snapshot") or {}).get("status")}


UNTOUCHED = {"primary": 1, "versions": {1: "enabled"}, "allowed": [M_CURRENT], "lock": None, "snapshot_status": None}
ROTATED = {"primary": 2, "versions": {1: "enabled", 2: "enabled"}, "allowed": sorted([M_CURRENT, M_NEW]), "lock": None,
           "snapshot_status": "completed"}


def fleet_inventory(store: Path, fleet, *, enclaves_as_hosts: bool = False, hosts=None) -> dict:
    """The AWX inventory of the fleet: one host per key in group kms_keys. The enclaves are given
    in kms_enclave_urls (group var of kms_keys), or, with enclaves_as_hosts, as hosts of group
    enclaves (host var enclave_url) - the form a sliced job must refuse."""
    hosts = hosts or {host: KEY_IDS[host] for host in HOSTS}
    hostvars = {host: {"kms_key_id": key_id, "kms_key_version": 1, "next_kms_key_version": 2,
                       "kms_allowed_measurements": [M_CURRENT, M_NEW], "kms_store_path": str(store)}
                for host, key_id in hosts.items()}
    group_vars = {"kms_provider": "local"}
    groups = {"kms_keys": {"hosts": sorted(hosts), "vars": group_vars}}
    if enclaves_as_hosts:
        groups["enclaves"] = {"hosts": sorted(fleet.urls)}
        hostvars.update({name: {"enclave_url": url} for name, url in fleet.urls.items()})
    else:
        group_vars["kms_enclave_urls"] = [fleet.urls[name] for name in sorted(fleet.urls)]
    return {"groups": groups, "hostvars": hostvars}


def slice_job_vars(number: int) -> dict:
    """The awx_*/tower_* extra vars of slice job ``number``: its own job id and execution node,
    the workflow job AWX created for the sliced job template."""
    job_id = WORKFLOW_JOB_ID + number
    meta = dict(AWX_VARS)
    for prefix in ("awx", "tower"):
        meta.update({f"{prefix}_job_id": job_id, f"{prefix}_job_launch_type": "workflow",
                     f"{prefix}_job_template_name": "tee_kms rotate fleet"})
    meta.update({"awx_workflow_job_id": WORKFLOW_JOB_ID, "awx_workflow_job_name": "tee_kms rotate fleet",
                 "awx_execution_node": f"awx-task-{number - 1}"})
    return meta


def run_extravars(evidence_root: Path, number: int) -> dict:
    """What every slice gets: the job template's extra vars (run-wide options, no key input:
    an extra var would override the host vars of every key) and its own AWX variables."""
    return {"env": "staging", "confirm_production": "false", "show_commands": "false", "rotation_action": "all",
            "evidence_dir": str(evidence_root), "health_retries": 0, "health_delay": 0, **slice_job_vars(number)}


@pytest.fixture
def sliced_job(tmp_path, project, clean_environ, signing_key):
    """sliced_job(inventory, credential, evidence_root) -> [Job per slice]: slice the inventory as
    AWX does (job_slice_count=2), start every slice job at once and wait for all of them."""

    def launch(inventory: dict, credential: dict, evidence_root: Path) -> list[Job]:
        started = []
        for number, data in enumerate(slices(inventory, SLICE_COUNT), start=1):
            pdd = tmp_path / f"slice{number}"
            extravars = run_extravars(evidence_root, number)
            lay_out_job(pdd, project, extravars, credential, signing_key)
            write_inventory_json(pdd, data)  # what AWX's inventory script prints for this slice
            ident = str(extravars["awx_job_id"])
            thread, runner = ansible_runner.run_async(private_data_dir=str(pdd), playbook="playbooks/rotate.yml",
                                                      ident=ident, forks=FORKS, quiet=True, timeout=240)
            started.append((pdd, ident, thread, runner, data))
        jobs = []
        for pdd, ident, thread, runner, data in started:
            thread.join(300)
            assert not thread.is_alive(), f"slice job {ident} did not end"
            job = Job(pdd, ident, runner)
            job.inventory = data
            jobs.append(job)
        return jobs

    return launch


def started_and_ended(job: Job) -> tuple[str, str]:
    return job.events[0]["created"], job.stats_event()["created"]


def credential(marker: Path, hooks=("preflight", "stage", "validate", "rollback")) -> dict:
    """The staging credential; each hook in ``hooks`` appends '<hook> <action> <key id>' to marker, the
    others are left empty (a hook is a process per key: the rotations keep only the rollback hook, which
    they must not need)."""
    inputs = credential_inputs(f"SliceTok-{uuid.uuid4().hex}", marker)
    return {name: "" if name.endswith("_cmd") and name[:-4] not in hooks else value for name, value in inputs.items()}


def hook_lines(marker: Path) -> list[str]:
    return marker.read_text().splitlines() if marker.exists() else []


# --- tests ------------------------------------------------------------------------------------

def test_slices_are_awx_slices():
    """The premise of the tests below, on the slicing rule itself: every host in exactly one
    slice, enclaves included; group vars in every slice; kms_keys split by sorted host name."""
    inventory = {"groups": {"kms_keys": {"hosts": HOSTS, "vars": {"kms_enclave_urls": ["u"]}},
                            "enclaves": {"hosts": ["enclave-1", "enclave-2"]}, "empty": {}},
                 "hostvars": {**{h: {"kms_key_id": KEY_IDS[h]} for h in HOSTS}, "enclave-1": {}, "enclave-2": {},
                              "bastion": {}}}
    first, second = slices(inventory, SLICE_COUNT)
    ordered = sorted(inventory["hostvars"])  # bastion, enclave-1, enclave-2, key01, ...
    assert list(first["_meta"]["hostvars"]) == ordered[0::2] and list(second["_meta"]["hostvars"]) == ordered[1::2]
    assert first["enclaves"] == {"hosts": ["enclave-2"]} and second["enclaves"] == {"hosts": ["enclave-1"]}
    assert first["all"]["hosts"] == ["bastion"] and second["all"]["hosts"] == []
    for data in (first, second):
        assert data["kms_keys"]["vars"] == {"kms_enclave_urls": ["u"]}
        assert "empty" not in data and data["all"]["children"] == ["empty", "enclaves", "kms_keys"]
    assert set(first["kms_keys"]["hosts"]).isdisjoint(second["kms_keys"]["hosts"])
    assert sorted(first["kms_keys"]["hosts"] + second["kms_keys"]["hosts"]) == HOSTS
    # A slice with none of a group's hosts and no vars for it has no entry for the group.
    alone = slices({"groups": {"enclaves": {"hosts": ["enclave-1"]}}, "hostvars": {"enclave-1": {}, "key01": {}}}, 2)
    assert "enclaves" in alone[0] and "enclaves" not in alone[1]
    # Never more slices than hosts.
    assert len(slices({"groups": {}, "hostvars": {"key01": {}}}, 5)) == 1


def test_two_slices_rotate_disjoint_halves_concurrently(sliced_job, key_store, fleet, tmp_path, signing_key):
    evidence_root = tmp_path / "evidence"  # one evidence volume shared by the execution nodes
    marker = tmp_path / "hooks.log"
    jobs = sliced_job(fleet_inventory(key_store, fleet), credential(marker, hooks=("rollback",)), evidence_root)

    for job in jobs:
        assert job.runner.status == "successful" and job.runner.rc == 0, job.stdout[-6000:]
    # The slices ran at the same time (each started before the other ended).
    (start1, end1), (start2, end2) = map(started_and_ended, jobs)
    assert start1 < end2 and start2 < end1, (start1, end1, start2, end2)

    # Two bundles, each verified with the signing key the credential injected.
    bundles = [job.bundle(evidence_root) for job in jobs]
    assert bundles[0] != bundles[1] and sorted(evidence_root.iterdir()) == sorted(bundles)
    seen: dict[str, str] = {}
    for job, bundle in zip(jobs, bundles):
        verified = verify_bundle(str(bundle), signing_key["public_pem"])
        assert verified["verified"] and verified["signature_verified"], verified
        # The slice job's own set_stats artifact is a link of its own bundle's chain.
        head = job.stats_event()["event_data"]["artifact_data"]["tee_kms_evidence"]
        chain = (bundle / "events.jsonl").read_text().splitlines()
        assert json.loads(chain[head["seq"]])["hash"] == head["hash"], head
        summary = json.loads((bundle / "summary.json").read_text())
        assert summary["outcome"] == "success" and summary["key_id"] is None, summary
        assert summary["key_ids"] == sorted(KEY_IDS[host] for host in job.inventory["kms_keys"]["hosts"])
        assert summary["awx"]["awx_job_id"] == int(job.ident)
        assert summary["awx"]["awx_workflow_job_id"] == WORKFLOW_JOB_ID
        # The bundle covers exactly the keys of its slice, each rotated 1 -> 2.
        slice_hosts = job.inventory["kms_keys"]["hosts"]
        assert [entry["host"] for entry in summary["keys"]] == sorted(slice_hosts)
        for entry in summary["keys"]:
            assert entry["key_id"] == KEY_IDS[entry["host"]] and entry["outcome"] == "success", entry
            assert entry["versions"]["primary_before"] == 1 and entry["versions"]["primary_after"] == 2, entry
            assert entry["rollback_executed"] is False and not entry["failed_tasks"], entry
            assert entry["key_id"] not in seen, f"{entry['key_id']} is in the bundles of {seen.get(entry['key_id'])} and {bundle}"
            seen[entry["key_id"]] = str(bundle)
    assert sorted(seen) == sorted(KEY_IDS.values())

    # Every key rotated exactly once: one new version, promoted, the allow-list extended, unlocked.
    for key_id in KEY_IDS.values():
        assert key_state(key_store, key_id) == ROTATED, key_id
    assert hook_lines(marker) == [], "a rollback hook ran"


def test_sliced_job_with_enclaves_as_hosts_is_refused(sliced_job, key_store, fleet, tmp_path, signing_key):
    """The tired operator keeps the enclaves as inventory hosts: AWX slices them like the keys, so
    each slice would attest only part of the fleet. Every slice is refused before any change."""
    evidence_root = tmp_path / "evidence"
    marker = tmp_path / "hooks.log"
    inventory = fleet_inventory(key_store, fleet, enclaves_as_hosts=True)
    jobs = sliced_job(inventory, credential(marker), evidence_root)

    for job in jobs:
        # The premise: each slice holds one enclave of the two.
        assert len(job.inventory["enclaves"]["hosts"]) == 1, job.inventory
        assert job.runner.status == "failed" and job.runner.rc != 0, job.stdout[-4000:]
        assert "kms_enclave_urls" in job.stdout, job.stdout[-4000:]
        # The refusal is on record: a verified bundle of a failed run that rolled nothing back.
        bundle = job.bundle(evidence_root)
        assert verify_bundle(str(bundle), signing_key["public_pem"])["verified"]
        summary = json.loads((bundle / "summary.json").read_text())
        assert summary["outcome"] == "failed" and summary["rollback_executed"] is False, summary
    for key_id in KEY_IDS.values():
        assert key_state(key_store, key_id) == UNTOUCHED, key_id
    assert hook_lines(marker) == [], "a hook ran before the refusal"


def test_key_given_twice_across_slices_rotates_once(sliced_job, key_store, fleet, tmp_path, signing_key):
    """Two hosts naming the same key land in different slices (sorted names key01, key01-again):
    the key's lock and version check let it change once; the other slice changes nothing."""
    evidence_root = tmp_path / "evidence"
    inventory = fleet_inventory(key_store, fleet, hosts={"key01": KEY_IDS["key01"], "key01-again": KEY_IDS["key01"]})
    marker = tmp_path / "hooks.log"
    jobs = sliced_job(inventory, credential(marker, hooks=("rollback",)), evidence_root)

    assert [job.inventory["kms_keys"]["hosts"] for job in jobs] == [["key01"], ["key01-again"]]
    assert key_state(key_store, KEY_IDS["key01"]) == ROTATED
    changed = []
    for job in jobs:
        summary = json.loads((job.bundle(evidence_root) / "summary.json").read_text())
        for entry in summary["keys"]:
            if entry["versions"]["primary_before"] != entry["versions"]["primary_after"]:
                changed.append(entry["host"])
    assert len(changed) == 1, changed
    assert sum(job.runner.status == "successful" for job in jobs) >= 1, [job.stdout[-3000:] for job in jobs]
    # The other slice changed nothing and rolled nothing back: it found the key already rotated, or was
    # refused by the key's lock, and says so.
    for job in jobs:
        if job.runner.status != "successful":
            assert "another rotation holds the key" in job.stdout, job.stdout[-4000:]
    assert hook_lines(marker) == [], "a rollback hook ran"
