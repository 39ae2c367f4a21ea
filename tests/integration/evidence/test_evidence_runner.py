# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""AWX-shaped run: ansible_runner with a private data dir, env/extravars and awx_display as stdout callback."""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys

import ansible_runner
import yaml

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import verify as ev_verify

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def test_ansible_runner_awx_metadata_events_and_set_stats(tmp_path):
    pdd = tmp_path / "pdd"
    shutil.copytree(os.path.join(HERE, "playbooks"), pdd / "project")
    (pdd / "env").mkdir()
    (pdd / "inventory").mkdir()
    (pdd / "inventory" / "hosts").write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    evidence_dir = tmp_path / "evidence"
    extravars = {
        "env": "production", "rotation_action": "all", "evidence_dir": str(evidence_dir),
        "awx_job_id": 4242, "awx_job_template_name": "tee-kms rotate production", "awx_user_name": "sre-bot",
        "awx_workflow_job_id": 17, "awx_job_launch_type": "scheduled",
        "deploy_token": "RunnerDeployTok-31", "awx_secret_token": "AwxSecretValue-9",
    }
    (pdd / "env" / "extravars").write_text(yaml.safe_dump(extravars))
    (pdd / "env" / "envvars").write_text(yaml.safe_dump({
        "ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg"),
        "HOOK_ENV_SECRET": "RunnerEnvSecret-8",
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    }))
    os.environ.pop("ALFRED_EVIDENCE_BUNDLE", None)
    runner = ansible_runner.run(private_data_dir=str(pdd), playbook="rotation_sim.yml", quiet=True, ident="job4242")
    assert runner.status == "successful", runner.stdout.read()
    assert runner.config.env.get("ANSIBLE_STDOUT_CALLBACK") == "awx_display"

    # AWX job events still come through the awx_display stdout callback
    events = list(runner.events)
    names = [e.get("event") for e in events]
    assert "playbook_on_start" in names and "runner_on_ok" in names and "playbook_on_stats" in names
    assert sum(1 for n in names if n == "runner_on_ok") >= 10

    bundles = glob.glob(str(evidence_dir / "production-all-*"))
    assert len(bundles) == 1
    bundle = bundles[0]
    summary = json.load(open(os.path.join(bundle, "summary.json")))
    assert summary["awx"] == {"awx_job_id": 4242, "awx_job_template_name": "tee-kms rotate production",
                              "awx_user_name": "sre-bot", "awx_workflow_job_id": 17, "awx_job_launch_type": "scheduled"}
    assert summary["outcome"] == "success" and summary["env"] == "production"
    assert ev_verify.verify_bundle(bundle)["verified"]

    # the set_stats artifact appears in the runner's artifacts (playbook_on_stats event data)
    stats_event = [e for e in events if e.get("event") == "playbook_on_stats"][-1]
    head = stats_event["event_data"]["artifact_data"]["tee_kms_evidence"]
    assert head["bundle"] == bundle
    chain = [json.loads(line) for line in open(os.path.join(bundle, "events.jsonl"))]
    assert chain[head["seq"]]["hash"] == head["hash"]
    job_events = glob.glob(str(pdd / "artifacts" / "job4242" / "job_events" / "*.json"))
    on_disk = [json.load(open(p)) for p in job_events]
    assert any(e.get("event") == "playbook_on_stats" and e["event_data"]["artifact_data"].get("tee_kms_evidence") == head
               for e in on_disk)

    # no planted secret in the bundle nor in the runner's stdout
    texts = [open(p, encoding="utf-8").read() for p in glob.glob(os.path.join(bundle, "*"))]
    texts.append(open(pdd / "artifacts" / "job4242" / "stdout").read())
    for text in texts:
        for secret in ("RunnerEnvSecret-8", "AwxSecretValue-9"):
            assert secret not in text
    for text in texts[:-1]:
        assert "RunnerDeployTok-31" not in text
