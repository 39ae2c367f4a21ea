#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How long does attesting a fleet take?

For N = 1, 10, 100, 500 simulated enclaves (one simulator process serving N) and each format:
- ``fleet``: one ``attest_endpoints`` call, what attestation_verify does per task (fresh nonce
  per enclave, HTTP on loopback, verification), median of a few runs;
- ``floor``: verifying the same evidence in-process, one document after another, no HTTP;
- for N = 100, the real module once more as a process (``python -m`` with an args file),
  and through ``ansible localhost -m`` (controller, module transfer and all).

Run from the repository root: ``.venv/bin/python benchmarks/bench_attestation.py``
(``--sizes 1,10`` / ``--repeat 1`` for a quick look). Writes benchmarks/results/attestation.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / ".collections"))


def _sim_dir() -> Path:
    # --sim-dir runs another copy of the simulator (for example one with a local fix).
    for index, arg in enumerate(sys.argv):
        if arg == "--sim-dir" and index + 1 < len(sys.argv):
            return Path(sys.argv[index + 1]).resolve()
        if arg.startswith("--sim-dir="):
            return Path(arg.split("=", 1)[1]).resolve()
    return REPO / "tools" / "enclave_sim"


sys.path.insert(0, str(_sim_dir()))

from fleet import SimulatorFleet  # noqa: E402

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import client  # noqa: E402
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.common import result_row, utcnow  # noqa: E402

MEASUREMENT = "5a" * 48
FORMATS = ("alfred", "nitro", "jwt")
MODULE_N = 100


def trust_params(trust: dict, fmt: str) -> dict:
    if fmt == "alfred":
        return {"public_keys": trust["alfred_public_keys"]}
    if fmt == "nitro":
        return {"root_certificate": trust["nitro_root_certificate"]}
    return {"jwks": trust["jwks"], "issuer": trust["jwt_issuer"], "audience": trust["jwt_audience"]}


def fleet_once(urls, fmt, options, workers, timeout):
    started = time.perf_counter()
    rows = client.attest_endpoints(urls, fmt, options, [MEASUREMENT], workers=workers, timeout=timeout)
    elapsed = time.perf_counter() - started
    bad = [r for r in rows if not r["verified"]]
    if bad:
        raise SystemExit(f"benchmark: {len(bad)} of {len(rows)} {fmt} enclaves not verified, first: {bad[0]['reason']}")
    return elapsed


def floor_once(urls, fmt, options):
    """Fetch every document once (untimed), then time verifying them all in-process."""
    import dataclasses

    session = client.new_session()
    try:
        fetched = [client.fetch_evidence(url, fmt, session=session) for url in urls]
    finally:
        session.close()
    started = time.perf_counter()
    for document, request in fetched:
        opts = dataclasses.replace(options, now=utcnow(), nonce=request.get("challenge_nonce", request.get("nonce")),
                                   request=request if fmt == "alfred" else None)
        row = result_row("bench", document, fmt, opts, [MEASUREMENT])
        if not row["verified"]:
            raise SystemExit(f"benchmark: in-process verification failed: {row['reason']}")
    return time.perf_counter() - started


def module_process(urls, fmt, trust, workers, timeout):
    args = {"format": fmt, "endpoints": urls, "allowed_measurements": [MEASUREMENT], "workers": workers,
            "timeout": timeout, **trust_params(trust, fmt)}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
        path = handle.name
    env = dict(os.environ, PYTHONPATH=str(REPO / ".collections"))
    try:
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "ansible_collections.alfred.tee_kms.plugins.modules.attestation_verify", path],
                              capture_output=True, text=True, env=env, cwd=REPO, check=False)
        elapsed = time.perf_counter() - started
    finally:
        os.unlink(path)
    result = json.loads(proc.stdout)
    if result.get("failed"):
        raise SystemExit(f"benchmark: module failed: {result['msg'][:300]}")
    return elapsed


def module_adhoc(urls, fmt, trust, workers, timeout):
    ansible = Path(sys.executable).with_name("ansible")
    if not ansible.exists():
        return None
    args = {"format": fmt, "endpoints": urls, "allowed_measurements": [MEASUREMENT], "workers": workers,
            "timeout": timeout, **trust_params(trust, fmt)}
    # Outside the repository so its ansible.cfg (evidence callback) stays out of the measurement.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"), ANSIBLE_PYTHON_INTERPRETER=sys.executable,
               ANSIBLE_LOCALHOST_WARNING="false")
    with tempfile.TemporaryDirectory() as cwd:
        started = time.perf_counter()
        proc = subprocess.run([str(ansible), "localhost", "-c", "local", "-i", "localhost,", "-o",
                               "-m", "alfred.tee_kms.attestation_verify", "-a", json.dumps(args)],
                              capture_output=True, text=True, env=env, cwd=cwd, check=False)
        elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"benchmark: ansible ad-hoc run failed ({proc.returncode}): {(proc.stdout + proc.stderr)[-600:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--sizes", default="1,10,100,500")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--sim-dir", default=str(REPO / "tools" / "enclave_sim"),
                        help="simulator folder (default tools/enclave_sim)")
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "attestation.json"))
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    formats = [f for f in args.formats.split(",") if f]

    rows = []
    module_runs = []
    for n in sizes:
        enclaves = [{"name": f"e{i:04d}", "measurement": MEASUREMENT, "mode": "ok"} for i in range(n)]
        with tempfile.TemporaryDirectory() as state, SimulatorFleet(state, enclaves=enclaves) as sim:
            urls = [sim.urls[e["name"]] for e in enclaves]
            for fmt in formats:
                options = client.options_from_params(trust_params(sim.trust, fmt))
                fleet_once(urls, fmt, options, args.workers, args.timeout)  # warm-up: leaves, pools
                runs = [fleet_once(urls, fmt, options, args.workers, args.timeout) for _ in range(args.repeat)]
                floor = floor_once(urls, fmt, options)
                row = {"n": n, "format": fmt, "workers": args.workers, "fleet_ms": round(statistics.median(runs) * 1000, 1),
                       "fleet_runs_ms": [round(r * 1000, 1) for r in runs], "floor_ms": round(floor * 1000, 1),
                       "per_enclave_ms": round(statistics.median(runs) * 1000 / n, 2)}
                rows.append(row)
                print(f"N={n:4d} {fmt:6s} fleet {row['fleet_ms']:9.1f} ms  ({row['per_enclave_ms']:6.2f} ms/enclave)  "
                      f"in-process floor {row['floor_ms']:8.1f} ms", flush=True)
                if n == MODULE_N:
                    proc_s = module_process(urls, fmt, sim.trust, args.workers, args.timeout)
                    adhoc_s = module_adhoc(urls, fmt, sim.trust, args.workers, args.timeout)
                    module_runs.append({"n": n, "format": fmt, "python_m_ms": round(proc_s * 1000, 1),
                                        "ansible_adhoc_ms": round(adhoc_s * 1000, 1) if adhoc_s is not None else None})
                    print(f"        module as a process {proc_s * 1000:9.1f} ms; ansible ad-hoc "
                          f"{adhoc_s * 1000 if adhoc_s is not None else float('nan'):9.1f} ms", flush=True)

    print("\n| N | format | fleet (median) | per enclave | in-process floor |")
    print("|---:|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['n']} | {row['format']} | {row['fleet_ms']:.1f} ms | {row['per_enclave_ms']:.2f} ms | {row['floor_ms']:.1f} ms |")
    if module_runs:
        print(f"\n| N | format | module via python -m | module via ansible ad-hoc |\n|---:|---|---:|---:|")
        for run in module_runs:
            print(f"| {run['n']} | {run['format']} | {run['python_m_ms']:.1f} ms | {run['ansible_adhoc_ms']} ms |")

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "attestation", "created": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(), "cpus": os.cpu_count(), "repeat": args.repeat,
        "simulator": str(Path(args.sim_dir).resolve()),
        "notes": "fleet = attest_endpoints over HTTP on loopback against one simulator process serving N enclaves "
                 "(median of repeat runs after a warm-up); floor = verifying the same evidence in-process, serially, "
                 "no HTTP; module = the real module for N=100 as a process and through ansible ad-hoc.",
        "results": rows, "module": module_runs,
    }, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
