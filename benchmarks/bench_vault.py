#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Wall time of a rotation (``rotate.yml``, action ``all``) on ``vault`` next to ``local``.

Real ``ansible-playbook`` runs against one enclave simulator (3 enclaves, jwt attestation for
both providers, so that only the provider differs): ``local`` on its store file, ``vault`` on
a real ``bao server -dev`` (OpenBao, from the test venv) on loopback. Each run rotates a fresh
key from version 1 to 2. Run from the repository root:

    .venv/bin/python benchmarks/bench_vault.py [--runs 3]

Writes benchmarks/results/vault.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "vault"), str(REPO / "tests")]  # vault_support imports tests/module_process.py

from vault_support import M_CURRENT, TARGET, BaoServer, new_key, new_key_id, start_fleet, trust_of, vault_env  # noqa: E402

from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local import LocalKmsProvider  # noqa: E402


def inventory(path: Path, fleet) -> Path:
    hosts = {name: {"enclave_url": url} for name, url in fleet.urls.items() if name != "probe-1"}
    path.write_text(json.dumps({"all": {
        "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}},
        "children": {"enclaves": {"hosts": hosts}, "probe_enclaves": {"hosts": {"probe-1": {"enclave_url": fleet.urls["probe-1"]}}}}}}))
    return path


def rotate(env: dict, inv: Path, provider: str, fleet, evidence: Path) -> float:
    extra = json.dumps({"attestation_format": "jwt", "attestation_trust": trust_of(fleet)})
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inv), str(REPO / "playbooks" / "rotate.yml"),
           "-e", "env=staging", "-e", f"kms_provider={provider}", "-e", extra, "-e", f"evidence_dir={evidence}", "-e", "health_delay=0"]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(REPO), timeout=900, check=False)
    took = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{provider} rotation failed:\n{proc.stdout[-3000:]}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runbook = {"KMS_KEY_VERSION": "1", "NEXT_KMS_KEY_VERSION": "2", "KMS_ALLOWED_MEASUREMENTS": ",".join(TARGET)}
    times = {"local": [], "vault": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bao = BaoServer(work / "bao").start()
        fleet = start_fleet(work / "sim", bao.url)
        try:
            bao.configure(fleet)
            inv = inventory(work / "hosts.json", fleet)
            for run in range(args.runs):
                store = work / f"store-{run}.json"
                key_id = new_key_id()
                LocalKmsProvider(str(store)).create_key(key_id, [M_CURRENT], "sha384", trust_of(fleet))
                env = {k: v for k, v in vault_env(bao, dict(runbook, KMS_KEY_ID=key_id)).items() if not k.startswith("VAULT_")}
                env["ALFRED_TEE_KMS_STORE"] = str(store)
                times["local"].append(rotate(env, inv, "local", fleet, work / "evidence"))
                key_id = new_key(bao, fleet)
                times["vault"].append(rotate(vault_env(bao, dict(runbook, KMS_KEY_ID=key_id)), inv, "vault", fleet, work / "evidence"))
        finally:
            bao.stop()
            fleet.stop()
    result = {name: {"runs_s": [round(t, 2) for t in values], "median_s": round(statistics.median(values), 2)}
              for name, values in times.items()}
    result["cpu_count"] = os.cpu_count()
    out = REPO / "benchmarks" / "results" / "vault.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
