# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers for playbook-level evidence tests: run the real ansible-playbook with the repo's ansible.cfg."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
PLAYBOOKS = os.path.join(HERE, "playbooks")
BIN = os.path.dirname(sys.executable)


class Run:
    def __init__(self, proc, evidence_dir):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.evidence_dir = evidence_dir

    @property
    def bundles(self):
        return sorted(glob.glob(os.path.join(self.evidence_dir, "*")))

    @property
    def bundle(self):
        found = self.bundles
        assert len(found) == 1, f"expected one bundle in {self.evidence_dir}, found {found}\n{self.stdout}\n{self.stderr}"
        return found[0]

    def summary(self):
        with open(os.path.join(self.bundle, "summary.json"), encoding="utf-8") as handle:
            return json.load(handle)

    def events(self):
        with open(os.path.join(self.bundle, "events.jsonl"), encoding="utf-8") as handle:
            return [json.loads(line) for line in handle]

    def file_texts(self):
        out = {}
        for root, _dirs, files in os.walk(self.bundle):
            for name in files:
                with open(os.path.join(root, name), "rb") as handle:
                    out[os.path.relpath(os.path.join(root, name), self.bundle)] = handle.read().decode("utf-8", "replace")
        return out


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "inventory.yml"
    path.write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        f"      ansible_python_interpreter: {sys.executable}\n"
    )
    return str(path)


@pytest.fixture
def run_playbook(tmp_path, inventory):
    def run(playbook, *args, env=None, extra=None, evidence_dir=None, cwd=None, timeout=300, set_evidence_dir=True):
        evidence_dir = evidence_dir or str(tmp_path / "evidence")
        extra = dict(extra or {})
        if set_evidence_dir:
            extra.setdefault("evidence_dir", evidence_dir)
        cmd = [os.path.join(BIN, "ansible-playbook"), "-i", inventory,
               playbook if os.path.isabs(playbook) else os.path.join(PLAYBOOKS, playbook)]
        for key, value in (extra or {}).items():
            cmd += ["-e", f"{key}={value}" if not isinstance(value, (dict, list, bool)) else json.dumps({key: value})]
        cmd += list(args)
        full_env = dict(os.environ)
        full_env.pop("ALFRED_EVIDENCE_BUNDLE", None)
        full_env.update({"ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
                         "ANSIBLE_FORCE_COLOR": "0", "PATH": BIN + os.pathsep + full_env.get("PATH", "")})
        full_env.update(env or {})
        proc = subprocess.run(cmd, cwd=cwd or str(tmp_path), env=full_env, capture_output=True, text=True, timeout=timeout, check=False)
        return Run(proc, evidence_dir)

    return run
