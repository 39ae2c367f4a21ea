#!/usr/bin/env python
"""`make demo`: a full key rotation against simulated enclaves, with its evidence verified.

1. start the enclave simulator on 127.0.0.1:18480 serving the enclaves of inventories/demo/hosts.yml;
2. create the demo key in the local store if it is missing, and point its attestation trust at
   the simulator's fresh signing key (a new key at every simulator start);
3. rotate: playbooks/rotate.yml -e env=staging -e rotation_action=all, from the key's primary version to
   the next one, with the allow-list [current image, new image];
4. print the outcome from the bundle's summary.json and verify the bundle
   (playbooks/verify_evidence.yml);
5. stop the simulator, whatever happened.

The demo only ever touches its own key in its own store: the runbook's and the providers'
environment variables of the caller (ALFRED_*, KMS_*, AWS_*, VAULT_*, ANSIBLE_* ...: a shell still
set up for a real rotation) are removed from every child process, which gets the demo's values
explicitly. Variants go through --ansible-args (-e rotation_validate_cmd=false shows the automatic
rollback). Exit status is the rotation's (non-zero when it failed or rolled back). See
tools/demo/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DEMO_DIR = REPO / "artifacts" / "demo"
INVENTORY = REPO / "inventories" / "demo" / "hosts.yml"
FLEET_PY = REPO / "tools" / "enclave_sim" / "fleet.py"
BIN = Path(sys.executable).parent

DEMO_KEY_ID = "tokens/demo-refresh"
DEFAULT_PORT = 18480
# Environment variables that choose a key, a store, a provider's account, hooks or Ansible's
# configuration: never inherited by the demo's children.
SCRUBBED_PREFIXES = ("ALFRED_", "KMS_", "NEXT_KMS_", "AWS_", "EC2_", "VAULT_", "BAO_", "ANSIBLE_")


def image_measurement(image: str) -> str:
    """A stable SHA-384 measurement (96 hex chars) for a named demo enclave image."""
    return hashlib.sha384(image.encode()).hexdigest()


CURRENT = image_measurement("alfred-enclave:2026.1")   # what enclave-1 and enclave-2 run
NEW = image_measurement("alfred-enclave:2026.2")       # what enclave-3 runs
NEVER = image_measurement("alfred-enclave:unreviewed") # probe-1: must never be allowed
MEASUREMENTS = {"enclave-1": CURRENT, "enclave-2": CURRENT, "enclave-3": NEW, "probe-1": NEVER}


def say(msg: str = "") -> None:
    print(f"demo: {msg}" if msg else "", flush=True)


def tool(name: str) -> str:
    """ansible tools from this Python's venv, else from PATH."""
    candidate = BIN / name
    return str(candidate) if candidate.exists() else name


def demo_inventory(port: int) -> Path:
    """The committed demo inventory, or a copy for another port; checks it matches the fleet."""
    inventory = yaml.safe_load(INVENTORY.read_text(encoding="utf-8"))
    groups = inventory["all"]["children"]
    hosts = {**groups["enclaves"]["hosts"], **groups["probe_enclaves"]["hosts"]}
    if set(hosts) != set(MEASUREMENTS):
        raise SystemExit(f"demo: {INVENTORY} lists {sorted(hosts)}; this demo simulates {sorted(MEASUREMENTS)}")
    for name, host in hosts.items():
        expected = f"http://127.0.0.1:{DEFAULT_PORT}/enclaves/{name}"
        if host["enclave_url"] != expected:
            raise SystemExit(f"demo: {INVENTORY}: {name} has enclave_url {host['enclave_url']}, expected {expected}")
        host["enclave_url"] = f"http://127.0.0.1:{port}/enclaves/{name}"
    if port == DEFAULT_PORT:
        return INVENTORY
    copy = DEMO_DIR / "hosts.yml"
    copy.write_text(yaml.safe_dump(inventory, sort_keys=False), encoding="utf-8")
    return copy


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def running_simulator(state_dir: Path) -> int | None:
    """The pid of a simulator still running from an earlier demo (its pidfile), if any."""
    try:
        pid = int((state_dir / "sim.pid").read_text().strip())
        return pid if b"enclave_sim" in Path(f"/proc/{pid}/cmdline").read_bytes() else None
    except (OSError, ValueError):
        return None


def demo_environment(caller: dict) -> dict:
    """The children's environment: the caller's without any variable that could point them at
    another key, store, account or hook, plus the demo's own."""
    env = {k: v for k, v in caller.items() if not k.startswith(SCRUBBED_PREFIXES)}
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ALFRED_TEE_KMS_STORE=str(DEMO_DIR / "kms-store.json"),
               KMS_KEY_ID=DEMO_KEY_ID)
    return env


def run(cmd: list[str], env: dict, capture: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, env=env, text=True, check=False,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.STDOUT if capture else None)


def run_module(env: dict, module: str, args: dict, check_mode: bool = False) -> tuple:
    """(exit status, result) of one module run by ad hoc ``ansible``."""
    proc = run([tool("ansible"), "localhost", "--one-line", "-m", f"alfred.tee_kms.{module}", "-a", json.dumps(args),
                *(["--check"] if check_mode else [])], env, capture=True)
    # --one-line prints "localhost | CHANGED => {...json...}"
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("localhost |")), "")
    try:
        return proc.returncode, json.loads(line.split(" => ", 1)[1])
    except (IndexError, ValueError):
        return proc.returncode, {"failed": True, "msg": proc.stdout.strip()}


def reconcile_key(env: dict, key_id: str, trust: dict, check_mode: bool) -> dict:
    """Create the key if missing (allow-list = the current image), replace its attestation trust
    with this simulator's signing key (update_trust: kms_key never replaces a trust silently), and
    return the key state. An existing key keeps the allow-list its rotations gave it. A rehearsal
    (check mode) changes nothing here either: its probes do not decrypt, so the stored trust is not used."""
    code, found = run_module(env, "kms_key_info", {"key_id": key_id, "missing_ok": True})
    if code != 0 or found.get("failed"):
        raise SystemExit(f"demo: could not read key {key_id!r}: {found.get('msg')}")
    args = {"key_id": key_id, "attestation_trust": trust, "update_trust": True}
    if not found.get("exists"):
        args["allowed_measurements"] = [CURRENT]
    code, result = run_module(env, "kms_key", args, check_mode)
    if code != 0 or result.get("failed"):
        raise SystemExit(f"demo: could not set up key {key_id!r}: {result.get('msg')}")
    if not result.get("key"):
        raise SystemExit(f"demo: key {key_id!r} does not exist yet; a rehearsal needs it: run the demo once without --check")
    created = result.get("audit", {}).get("operation") == "create_key"
    say(f"key {key_id} in {env['ALFRED_TEE_KMS_STORE']}: {'created' if created else 'present'}, "
        f"primary version {result['key']['primary_version']}, attestation trust "
        + ("left as is (check mode)" if check_mode else "= this simulator's key"))
    return result["key"]


def newest_bundle(evidence_dir: Path, before: set[Path]) -> Path | None:
    new = [p for p in evidence_dir.glob("*/summary.json") if p.parent not in before]
    return max(new, key=lambda p: p.stat().st_mtime).parent if new else None


def print_summary(bundle: Path) -> None:
    s = json.loads((bundle / "summary.json").read_text(encoding="utf-8"))
    versions, allowed, rollback = s.get("versions", {}), s.get("allowed_measurements", {}), s.get("rollback", {})
    names = {CURRENT: "current", NEW: "new", NEVER: "never-allowed"}

    def images(values):
        return ", ".join(f"{v[:12]}..({names.get(v, '?')})" for v in values or []) or "-"

    say()
    say(f"env={s.get('env')} action={s.get('action')} check_mode={s.get('check_mode')} key={s.get('key_id')}")
    say(f"primary version: {versions.get('primary_before')} -> {versions.get('primary_after')} "
        f"(planned {versions.get('current')} -> {versions.get('next')})")
    say(f"allow-list before: {images(allowed.get('before'))}")
    say(f"allow-list after:  {images(allowed.get('after'))}")
    say(f"outcome: {s.get('outcome')}; rollback executed: {rollback.get('executed', False)}"
        + (f" ({rollback.get('outcome')})" if rollback.get("executed") else ""))
    for task in s.get("failed_tasks") or []:
        say(f"failed task: {task.get('task')}: {task.get('msg')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rotate a demo key against simulated enclaves.")
    parser.add_argument("--ansible-args", default="", help="extra ansible-playbook arguments, e.g. '--check --diff'")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"simulator port (default {DEFAULT_PORT})")
    parser.add_argument("--evidence-dir", default=str(REPO / "artifacts" / "security" / "rotation"))
    args = parser.parse_args(argv)

    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    state_dir = DEMO_DIR / "sim"
    evidence_dir = Path(args.evidence_dir).resolve()
    env = demo_environment(os.environ)
    key_id = env["KMS_KEY_ID"]

    inventory = demo_inventory(args.port)
    if not port_is_free(args.port):
        say(f"port 127.0.0.1:{args.port} is already in use (another demo or simulator?); refusing to start.")
        say(f"stop it first (a demo simulator stops with: {sys.executable} {FLEET_PY.relative_to(REPO)} stop "
            f"--state-dir {state_dir.relative_to(REPO)}), or use another port: run_demo.py --port N")
        return 1

    running = running_simulator(state_dir)
    if running:
        say(f"a demo simulator from an earlier run is still running (pid {running}); stop it with: "
            f"{sys.executable} {FLEET_PY.relative_to(REPO)} stop --state-dir {state_dir.relative_to(REPO)}")
        return 1

    fleet_file = DEMO_DIR / "fleet.json"
    fleet_file.write_text(json.dumps({"enclaves": [{"name": n, "measurement": m, "mode": "ok"}
                                                   for n, m in MEASUREMENTS.items()]}, indent=2) + "\n")
    try:
        if run([sys.executable, str(FLEET_PY), "start", "--state-dir", str(state_dir), "--fleet", str(fleet_file),
                "--port", str(args.port)], env).returncode != 0:
            return 1
        trust_doc = json.loads((state_dir / "trust.json").read_text(encoding="utf-8"))
        trust = {"public_keys": trust_doc["alfred_public_keys"]}

        extra = shlex.split(args.ansible_args)
        check_mode = any(a == "--check" or re.fullmatch(r"-[a-zA-Z]*C[a-zA-Z]*", a) for a in extra)
        key = reconcile_key(env, key_id, trust, check_mode)
        primary = int(key["primary_version"])
        env.update(KMS_KEY_VERSION=str(primary), NEXT_KMS_KEY_VERSION=str(primary + 1), KMS_ALLOWED_MEASUREMENTS=f"{CURRENT},{NEW}")
        say(f"rotating {key_id}: version {primary} -> {primary + 1}, allow-list [current image, new image]"
            + (f", ansible args: {args.ansible_args}" if args.ansible_args else ""))

        before = {p.parent for p in evidence_dir.glob("*/summary.json")}
        rotate = [tool("ansible-playbook"), "-i", str(inventory), "playbooks/rotate.yml",
                  "-e", "env=staging", "-e", "rotation_action=all",
                  "-e", json.dumps({"evidence_dir": str(evidence_dir), "attestation_trust": trust}),
                  *extra]
        rc = run(rotate, env).returncode

        bundle = newest_bundle(evidence_dir, before)
        if bundle is None:
            say(f"no evidence bundle was written under {evidence_dir}")
            return rc or 1
        print_summary(bundle)
        verify = run([tool("ansible-playbook"), "playbooks/verify_evidence.yml",
                      "-e", json.dumps({"bundle": str(bundle)})], env, capture=True)
        if verify.returncode == 0:
            say(f"evidence bundle verified (hash chain and manifest): {bundle}")
        else:
            print(verify.stdout)
            say(f"evidence bundle did NOT verify: {bundle}")
        what = "rehearsal (check mode, nothing changed)" if check_mode else "rotation"
        say(f"{what} {'succeeded' if rc == 0 else f'FAILED (ansible-playbook exit {rc})'}; "
            f"key store {env['ALFRED_TEE_KMS_STORE']}")
        return rc or verify.returncode
    finally:
        run([sys.executable, str(FLEET_PY), "stop", "--state-dir", str(state_dir)], env)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ndemo: interrupted", file=sys.stderr)
        sys.exit(130)
