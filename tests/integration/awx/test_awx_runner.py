# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/rotate.yml run the way AWX runs a job: ansible_runner.run() on a private data dir.

The private data dir is laid out as AWX lays it out for a job of the "tee_kms rotate" job
template (playbooks/awx_configure.yml):

* ``project/``: a checkout of this repository (tracked and new files, not the ignored ones),
  with the project's own ``ansible.cfg`` picked up from the working directory; nothing sets
  ``ANSIBLE_CONFIG``;
* the collection resolves from an "execution environment" collections path given as
  ``ANSIBLE_COLLECTIONS_PATH`` (AWX sets it for every job), not from the project's
  ``.collections``;
* ``inventory/hosts``: an executable inventory script printing JSON, the form AWX writes, with
  the enclaves of a real ``SimulatorFleet``;
* ``env/extravars``: survey answers, job template extra vars and the ``awx_*``/``tower_*``
  variables AWX adds;
* ``env/envvars``: what the "tee_kms rotation inputs" credential type injects (runbook
  environment variables, hook commands carrying a planted secret, the evidence signing key
  written as a file).

Nothing is mocked: the key lives in a real local KMS store, the enclaves are real HTTP
servers serving signed attestation evidence, the hooks are real shell commands.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import ansible_runner
import pytest
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
BIN = Path(sys.executable).parent
CREDENTIAL_TYPE = REPO / "playbooks" / "vars" / "awx_credential_type.yml"
sys.path.insert(0, str(REPO / "tools" / "enclave_sim"))

from fleet import SimulatorFleet  # noqa: E402
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.verify import verify_bundle  # noqa: E402
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local import LocalKmsProvider  # noqa: E402

KEY_ID = "tokens/refresh"
M_CURRENT = "a1" * 48   # enclave-1: the running image, allowed before and after
M_NEW = "b2" * 48       # enclave-2: the new image the first rotation adds
M_FUTURE = "d4" * 48    # not running anywhere yet: added by the second (failing) rotation
ENCLAVES = [
    {"name": "enclave-1", "measurement": M_CURRENT},
    {"name": "enclave-2", "measurement": M_NEW},
    {"name": "api", "measurement": M_CURRENT},  # stands in for the token API health endpoint
]
# Inherited variables that would change what the job does; AWX starts jobs with a clean env.
SCRUB_PREFIXES = ("KMS_", "NEXT_KMS_", "ALFRED_", "ANSIBLE_", "AWS_", "CONTROLLER_", "TOWER_")

AWX_VARS = {
    "awx_job_id": 4711, "awx_job_launch_type": "workflow", "awx_job_template_id": 21,
    "awx_job_template_name": "tee_kms rotate", "awx_user_id": 7, "awx_user_name": "sre-oncall",
    "awx_user_email": "sre-oncall@example.invalid", "awx_inventory_id": 3, "awx_inventory_name": "tee_kms enclaves staging",
    "awx_project_revision": "8974312", "awx_project_scm_branch": "main", "awx_execution_node": "awx-task-0",
    "awx_workflow_job_id": 4710, "awx_workflow_job_name": "tee_kms rotation with rollback on failure",
    "awx_parent_job_schedule_id": None,
    "tower_job_id": 4711, "tower_job_launch_type": "workflow", "tower_job_template_id": 21,
    "tower_job_template_name": "tee_kms rotate", "tower_user_id": 7, "tower_user_name": "sre-oncall",
}


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with SimulatorFleet(tmp_path_factory.mktemp("sim"), enclaves=ENCLAVES) as running:
        yield running


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project checkout: tracked and new files of the working tree, like AWX's project sync
    (ignored paths such as .venv, .collections and artifacts are not part of a checkout)."""
    dest = tmp_path_factory.mktemp("scm") / "project"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    assert (dest / "ansible.cfg").is_file() and (dest / "playbooks" / "rotate.yml").is_file()
    # The execution environment's collections path (ansible-builder installs the collection
    # there from the built tarball; here the checkout itself stands in for it).
    ee = tmp_path_factory.mktemp("ee") / "collections"
    (ee / "ansible_collections" / "alfred").mkdir(parents=True)
    (ee / "ansible_collections" / "alfred" / "tee_kms").symlink_to(dest)
    return {"dir": dest, "collections": ee}


@pytest.fixture
def clean_environ(monkeypatch):
    """ansible_runner passes os.environ to the job: give it what an AWX worker would, nothing of the developer's shell."""
    for name in list(os.environ):
        if name.startswith(SCRUB_PREFIXES):
            monkeypatch.delenv(name)


@pytest.fixture
def signing_key(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return {"pem": pem.decode(), "public_pem": public.decode()}


class Job:
    """One AWX-shaped job: a private data dir and the result of ansible_runner.run()."""

    def __init__(self, pdd: Path, ident: str, runner):
        self.pdd, self.ident, self.runner = pdd, ident, runner
        self.events = list(runner.events)
        self.stdout = runner.stdout.read()

    @property
    def artifact_dir(self) -> Path:
        return self.pdd / "artifacts" / self.ident

    def names(self) -> list[str]:
        return [event.get("event") for event in self.events]

    def stats_event(self) -> dict:
        found = [event for event in self.events if event.get("event") == "playbook_on_stats"]
        assert len(found) == 1, self.names()
        return found[0]

    def task_events(self, event_name: str, role: str | None = None) -> list[dict]:
        return [e for e in self.events if e.get("event") == event_name
                and (role is None or e.get("event_data", {}).get("role") == role)]

    def tasks(self, event_name: str, role: str) -> set[str]:
        return {e["event_data"].get("task") for e in self.task_events(event_name, role)}

    def bundle(self, evidence_root: Path) -> Path:
        head = self.stats_event()["event_data"]["artifact_data"]["tee_kms_evidence"]
        bundle = Path(head["bundle"])
        assert bundle.parent == evidence_root, (bundle, evidence_root)
        return bundle

    def texts_for_leak_check(self, bundle: Path) -> dict[str, str]:
        """Everything AWX keeps from a job (artifacts/, stdout, event stream) and the evidence bundle.

        One file is set aside: ansible-runner itself always writes ``artifacts/<ident>/command``
        (mode 0600) with the job's whole environment, so every injected credential value is in
        it whatever the playbook does. It is checked separately (:func:`assert_no_leak`)."""
        texts = {"runner stdout": self.stdout, "runner events": json.dumps(self.events)}
        for root in (self.pdd / "artifacts", bundle):
            for path in root.rglob("*"):
                if path.is_file() and path != self.artifact_dir / "command":
                    texts[str(path)] = path.read_bytes().decode("utf-8", "replace")
        return texts


def write_inventory_script(pdd: Path, fleet) -> None:
    """AWX gives ansible-runner an executable inventory script that prints the inventory as JSON."""
    inventory = {
        "all": {"children": ["enclaves", "ungrouped"]},
        "enclaves": {"hosts": ["enclave-1", "enclave-2"]},
        "_meta": {"hostvars": {name: {"enclave_url": fleet.urls[name]} for name in ("enclave-1", "enclave-2")}},
    }
    write_inventory_json(pdd, inventory)


def write_inventory_json(pdd: Path, inventory: dict) -> None:
    script = pdd / "inventory" / "hosts"
    script.parent.mkdir(parents=True)
    script.write_text(f"#!{sys.executable}\n# -*- coding: utf-8 -*-\nimport json\nprint(json.dumps({inventory!r}))\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def lay_out_job(pdd: Path, project: dict, extravars: dict, credential: dict, signing_key: dict) -> None:
    """A private data dir as AWX lays one out for a job, the inventory aside: project/, env/extravars,
    env/envvars with the credential's injectors."""
    (pdd / "env").mkdir(parents=True)
    (pdd / "project").symlink_to(project["dir"])
    # The credential type's injectors, rendered as AWX renders them: file injectors are
    # written into the private data dir (env/) and the env injector points at the file.
    key_file = pdd / "env" / f"tmp{uuid.uuid4().hex[:8]}"
    injected_env, files = render_credential(dict(credential, evidence_signing_key=signing_key["pem"]), str(key_file))
    key_file.write_text(files["template.evidence_signing_key"])
    key_file.chmod(0o600)
    full_env = {
        "PATH": str(BIN) + os.pathsep + os.environ.get("PATH", ""),
        "ANSIBLE_COLLECTIONS_PATH": str(project["collections"]),
        "ANSIBLE_FORCE_COLOR": "False",
    }
    full_env.update(injected_env)
    (pdd / "env" / "envvars").write_text(yaml.safe_dump(full_env))
    (pdd / "env" / "extravars").write_text(yaml.safe_dump(extravars))


@pytest.fixture
def awx_job(tmp_path, fleet, project, clean_environ, signing_key):
    """run(extravars, credential inputs, ...) -> Job: lay out a private data dir and run playbooks/rotate.yml."""
    counter = {"n": 0}

    def run(extravars: dict, credential: dict, playbook: str = "playbooks/rotate.yml",
            ident: str | None = None) -> Job:
        counter["n"] += 1
        pdd = tmp_path / f"pdd{counter['n']}"
        lay_out_job(pdd, project, extravars, credential, signing_key)
        write_inventory_script(pdd, fleet)
        ident = ident or str(extravars.get("awx_job_id", counter["n"]))
        runner = ansible_runner.run(private_data_dir=str(pdd), playbook=playbook, ident=ident, quiet=True,
                                    timeout=240)
        return Job(pdd, ident, runner)

    return run


@pytest.fixture
def key_store(tmp_path, fleet, awx_job):
    """Create the key with the collection's own kms_key module, in a job of its own."""
    store_dir = tmp_path / "kms"
    store_dir.mkdir(mode=0o700)
    store = store_dir / "store.json"
    play = [{
        "name": "Create the token key", "hosts": "localhost", "connection": "local", "gather_facts": False,
        "tasks": [{
            "name": "Create the key with version 1 and the running image allowed",
            "alfred.tee_kms.kms_key": {
                "provider": "local", "store_path": str(store), "key_id": KEY_ID,
                "allowed_measurements": [M_CURRENT],
                "attestation_trust": {"public_keys": [fleet.trust["alfred_public_keys"][0]]},
            },
            "register": "created",
        }, {
            "name": "The key was created",
            "ansible.builtin.assert": {"that": ["created is changed"]},
        }],
    }]
    setup = tmp_path / "setup"
    (setup / "project").mkdir(parents=True)
    (setup / "project" / "create_key.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    (setup / "env").mkdir()
    (setup / "env" / "envvars").write_text(yaml.safe_dump({
        "PATH": str(BIN) + os.pathsep + os.environ.get("PATH", ""),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections")}))
    result = ansible_runner.run(private_data_dir=str(setup), playbook="create_key.yml", quiet=True, ident="setup")
    assert result.status == "successful", result.stdout.read()
    return store


def key_state(store: Path) -> dict:
    raw = LocalKmsProvider(str(store)).describe_key(KEY_ID)
    return {"primary": raw["primary_version"], "versions": {v["version"]: v["state"] for v in raw["versions"]},
            "allowed": sorted(raw["allowed_measurements"]), "lock": raw.get("lock"),
            "snapshot_status": (raw.get("snapshot") or {}).get("status")}


def render_credential(inputs: dict, key_file: str) -> tuple[dict, dict]:
    """(env, files) of the 'tee_kms rotation inputs' credential type of playbooks/awx_configure.yml,
    rendered from credential inputs the way AWX renders injectors (sandboxed Jinja)."""
    loader = type("Loader", (yaml.SafeLoader,), {})
    loader.add_constructor("!unsafe", lambda load, node: load.construct_scalar(node))
    injectors = yaml.load(CREDENTIAL_TYPE.read_text(), Loader=loader)["tee_kms_awx_credential_type_injectors"]  # noqa: S506
    sandbox = ImmutableSandboxedEnvironment()
    namespace = dict(inputs, tower={"filename": {"evidence_signing_key": key_file}})
    env = {name: sandbox.from_string(template).render(**namespace) for name, template in injectors["env"].items()}
    files = {name: sandbox.from_string(template).render(**namespace) for name, template in injectors["file"].items()}
    return env, files


def credential_inputs(secret: str, marker: Path, *, validate_cmd: str | None = None) -> dict:
    """Inputs of a 'tee_kms rotation inputs' credential: the secrets only (the signing key is added by awx_job)."""
    # The hooks carry a credential in their command text, as real hook commands do.
    hook = f"ROTATION_API_TOKEN={secret} sh -c 'echo {{name}} $ALFRED_ROTATION_ACTION $KMS_KEY_ID >> {marker}'"
    return {
        "alfred_env": "staging",
        "preflight_cmd": hook.format(name="preflight"),
        "stage_cmd": hook.format(name="stage"),
        "validate_cmd": validate_cmd or hook.format(name="validate"),
        "rollback_cmd": hook.format(name="rollback"),
    }


def job_extravars(fleet, evidence_root: Path, store: Path, *, current: int, nxt: int, measurements: list[str],
                  **overrides) -> dict:
    """Survey answers (as AWX surveys give them) + job template extra vars + AWX's own."""
    extravars = {
        # survey: the run options as strings (multiple choice), the rotation's inputs (integer questions give ints)
        "env": "staging", "confirm_production": "false", "show_commands": "false",
        "kms_key_id": KEY_ID, "kms_key_version": current, "next_kms_key_version": nxt,
        "kms_allowed_measurements": ",".join(measurements),
        # job template extra_vars (the site's tee_kms_awx_extra_vars); no attestation_trust: the key's is used
        "rotation_action": "all", "kms_provider": "local", "evidence_dir": str(evidence_root), "kms_store_path": str(store),
        "api_healthcheck_url": fleet.urls["api"] + "/healthz", "enclave_healthcheck_url": fleet.urls["enclave-1"] + "/healthz",
        "health_retries": 0, "health_delay": 0,
    }
    extravars.update(AWX_VARS)
    extravars.update(overrides)
    return extravars


def assert_no_leak(job: Job, bundle: Path, hook_secret: str, key_secret: str) -> None:
    """hook_secret is in the injected hook commands, key_secret in the injected signing key file."""
    secrets = [hook_secret, key_secret]
    injected = "".join(path.read_text() for path in (job.pdd / "env").iterdir())  # envvars + credential files
    for secret in secrets:
        assert secret in injected, "the planted secret was not injected: this check would prove nothing"
    for where, text in job.texts_for_leak_check(bundle).items():
        for secret in secrets:
            assert secret not in text, f"a secret injected by the credential reached {where}"
    # ansible-runner's own record of the job environment: owner-only, and the secrets are only
    # in the injected environment values (the hook commands), never in the command line.
    command = job.artifact_dir / "command"
    assert stat.S_IMODE(command.stat().st_mode) == 0o600
    record = json.loads(command.read_text())
    rest = json.dumps({k: v for k, v in record.items() if k != "env"})
    hook_values = json.dumps({k: v for k, v in record["env"].items() if k.startswith("ALFRED_ROTATION_") and k.endswith("_CMD")})
    others = json.dumps({k: v for k, v in record["env"].items() if not (k.startswith("ALFRED_ROTATION_") and k.endswith("_CMD"))})
    assert hook_secret in hook_values
    for secret in secrets:
        assert secret not in rest and secret not in others


# --- tests ------------------------------------------------------------------------------------

def test_rotate_job_like_awx_then_failing_validate_rolls_back(awx_job, key_store, fleet, tmp_path, signing_key):
    evidence_root = tmp_path / "evidence"
    secret = f"AwxHookTok-{uuid.uuid4().hex}"
    marker = tmp_path / "hooks.log"
    private_key_body = "".join(signing_key["pem"].splitlines()[1:-1])

    # ---- job 1: the "tee_kms rotate" job template, a full rotation 1 -> 2 ----
    before = key_state(key_store)
    assert before == {"primary": 1, "versions": {1: "enabled"}, "allowed": [M_CURRENT], "lock": None,
                      "snapshot_status": None}
    job = awx_job(job_extravars(fleet, evidence_root, key_store, current=1, nxt=2, measurements=[M_CURRENT, M_NEW]),
                  credential_inputs(secret, marker))
    assert job.runner.status == "successful" and job.runner.rc == 0, job.stdout[-6000:]
    assert job.runner.config.env.get("ANSIBLE_STDOUT_CALLBACK") == "awx_display"
    assert "ANSIBLE_CONFIG" not in job.runner.config.env  # the project's own ansible.cfg, from the cwd
    assert "reserved name" not in job.stdout  # rotation_action, not the task keyword action
    assert key_state(key_store) == {"primary": 2, "versions": {1: "enabled", 2: "enabled"},
                                    "allowed": sorted([M_CURRENT, M_NEW]), "lock": None, "snapshot_status": "completed"}
    assert marker.read_text().split("\n")[:3] == [f"preflight all {KEY_ID}", f"stage all {KEY_ID}", f"validate all {KEY_ID}"]

    # The job event stream AWX stores and shows: ordered, with task events of every role.
    names = job.names()
    # The stats event, then the collection's end-of-run summary as a "verbose" event (what AWX shows of plain output).
    assert names[0] == "playbook_on_start" and names[-2:] == ["playbook_on_stats", "verbose"], names[:3] + names[-3:]
    assert job.events[-1]["stdout"].startswith("ALFRED TEE KMS LIVE SUMMARY")
    assert "playbook_on_play_start" in names and "runner_on_failed" not in names
    counters = [e["counter"] for e in job.events]
    assert counters == sorted(counters) and len(set(counters)) == len(counters)
    role_ok = job.tasks("runner_on_ok", "rotation")  # the steps are entry points of the one role alfred.tee_kms.rotation
    assert {"Verify live attestation of every enclave", "Record the pre-rotation snapshot with the key"} <= role_ok  # preflight
    assert "Promote the new version" in role_ok  # stage
    assert "Prove the new version through the attested path before promoting it" in role_ok
    assert "Mark the rotation as completed in the snapshot" in role_ok, "no validate task reported ok"
    assert not {"Take the rotation lock for the rollback", "Restore the snapshot's primary version and allow-list"} & role_ok
    resolved = {e["event_data"].get("resolved_action") for e in job.task_events("runner_on_ok")}
    assert {"alfred.tee_kms.attestation_verify", "alfred.tee_kms.kms_key_version", "alfred.tee_kms.rotation_hook",
            "ansible.builtin.set_stats"} <= resolved
    stats = job.stats_event()["event_data"]
    assert stats["failures"] == {} and stats["changed"].get("localhost", 0) > 0

    # set_stats: the chain head is in the stats event (AWX's job artifacts) and on disk in runner's artifacts.
    head = stats["artifact_data"]["tee_kms_evidence"]
    assert set(head) == {"bundle", "seq", "hash"}
    bundle = job.bundle(evidence_root)
    assert bundle.name.startswith("staging-all-")
    on_disk = [json.loads(p.read_text()) for p in (job.artifact_dir / "job_events").glob("*.json")]
    assert any(e.get("event") == "playbook_on_stats" and e["event_data"]["artifact_data"] == {"tee_kms_evidence": head}
               for e in on_disk)
    chain = [json.loads(line) for line in (bundle / "events.jsonl").read_text().splitlines()]
    assert chain[head["seq"]]["hash"] == head["hash"] and head["seq"] < len(chain) - 1

    # The bundle verifies, signed with the key the credential injected as a file; the summary
    # carries the AWX job metadata.
    verified = verify_bundle(str(bundle), signing_key["public_pem"])
    assert verified["verified"] and verified["signature_verified"], verified
    summary = json.loads((bundle / "summary.json").read_text())
    assert summary["outcome"] == "success" and summary["rollback_executed"] is False
    assert (summary["env"], summary["action"], summary["check_mode"], summary["provider"], summary["key_id"]) == \
        ("staging", "all", False, "local", KEY_ID)
    assert summary["awx"] == AWX_VARS
    assert summary["versions"]["primary_before"] == 1 and summary["versions"]["primary_after"] == 2
    assert summary["signed"] is True
    # The end-of-run summary is in the job output AWX shows (printed under awx_display), after the recap.
    out = job.stdout
    assert out.index("PLAY RECAP") < out.index("ALFRED TEE KMS LIVE SUMMARY"), out[-3000:]
    for line in ("outcome: SUCCESS", "primary version: 1 -> 2", f"  + {M_NEW[:12]}  added", f"  = {M_CURRENT[:12]}  kept",
                 f"  validate   enclave-2  {M_NEW[:12]}  verified", "rollback: not executed", f"evidence: {bundle}",
                 f"chain head: seq {summary['chain_head']['seq']} sha256 {summary['chain_head']['hash']}"):
        assert f"\n{line}\n" in out, (line, out[-3000:])
    assert summary["operator"] == "sre-oncall (AWX)" and (bundle / "report.html").is_file()
    assert_no_leak(job, bundle, secret, private_key_body)

    # ---- job 2: a later job rotates 2 -> 3; the validate hook fails -> automatic rollback ----
    marker.unlink()
    secret2 = f"AwxHookTok-{uuid.uuid4().hex}"
    failing = f"ROTATION_API_TOKEN={secret2} sh -c 'echo validate-failed >> {marker}; exit 3'"
    before2 = key_state(key_store)
    job2 = awx_job(job_extravars(fleet, evidence_root, key_store, current=2, nxt=3, measurements=[M_CURRENT, M_NEW, M_FUTURE],
                                 awx_job_id=4712, tower_job_id=4712),
                   credential_inputs(secret2, marker, validate_cmd=failing))
    assert job2.runner.status == "failed" and job2.runner.rc != 0, job2.stdout[-6000:]
    # Back exactly at the snapshot: primary 2 and the allow-list of job 1; version 3 stays enabled
    # (nothing is ever disabled or destroyed), the lock is released.
    after2 = key_state(key_store)
    assert after2 == {"primary": 2, "versions": {1: "enabled", 2: "enabled", 3: "enabled"},
                      "allowed": before2["allowed"], "lock": None, "snapshot_status": "rolled_back"}
    assert marker.read_text().splitlines() == [f"preflight all {KEY_ID}", f"stage all {KEY_ID}", "validate-failed",
                                               f"rollback all {KEY_ID}"]

    failed = job2.task_events("runner_on_failed", "rotation")
    assert [e["event_data"]["task"] for e in failed] == ["Run the validate hook", "Fail the run after the rollback"], \
        [e["event_data"].get("task") for e in failed]
    assert "Restore the snapshot's primary version and allow-list" in job2.tasks("runner_on_ok", "rotation")
    stats2 = job2.stats_event()["event_data"]
    assert stats2["failures"].get("localhost") == 1 and stats2["rescued"].get("localhost") == 1
    head2 = stats2["artifact_data"]["tee_kms_evidence"]
    bundle2 = job2.bundle(evidence_root)
    assert bundle2 != bundle and head2["bundle"] == str(bundle2)
    summary2 = json.loads((bundle2 / "summary.json").read_text())
    assert summary2["outcome"] == "rolled_back" and summary2["rollback_executed"] is True
    assert summary2["awx"]["awx_job_id"] == 4712 and summary2["awx"]["tower_job_id"] == 4712
    assert "\noutcome: ROLLED_BACK\n" in job2.stdout and "\nrollback: executed: restored, primary restored to 2\n" in job2.stdout
    assert verify_bundle(str(bundle2), signing_key["public_pem"])["verified"]
    assert_no_leak(job2, bundle2, secret2, private_key_body)
