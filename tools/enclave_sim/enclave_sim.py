#!/usr/bin/env python
"""Enclave simulator: plays TEE enclave runtimes on loopback for the demo, tests and benchmarks.

    python tools/enclave_sim/enclave_sim.py --state-dir DIR [--port 0] [--bind 127.0.0.1]
        [--fleet FLEET.json | --measurement M [--mode MODE] [--slow-seconds S]] [--runtime NAME]

Writes trust.json, nitro_root.pem and jwks.json to DIR, then ready.json last (atomically, once
the socket listens), and removes ready.json again on SIGTERM/SIGINT. See README.md.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kms_canary import shut_down  # noqa: E402 - the path above makes siblings importable
from sim_server import (  # noqa: E402 - the path above makes siblings importable when run as a script
    DEFAULT_RUNTIME, DEFAULT_SLOW_SECONDS, LOGIN_TOKEN_SECONDS, MODES, ConfigError, Enclave, EnclaveConfig, Simulator,
)

DEFAULT_NAME = "default"


def write_atomic(path: Path, data: str) -> None:
    """Write then rename, so a poller never reads a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_fleet(path: str, *, runtime: str, slow_seconds: float) -> list[Enclave]:
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read fleet file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"fleet file {path} is not valid JSON: {exc}") from None
    entries = doc.get("enclaves") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f'fleet file {path} must hold {{"enclaves": [{{"name": .., "measurement": ..}}, ..]}}')
    enclaves = []
    allowed = {"name", "measurement", "mode", "slow_seconds", "runtime", "canary", "login_token_seconds"}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigError(f"fleet file {path}: enclaves[{index}] is not an object")
        unknown = sorted(set(entry) - allowed)
        if unknown:
            raise ConfigError(f"fleet file {path}: enclaves[{index}] has unknown keys {unknown}")
        if "measurement" not in entry:
            raise ConfigError(f"fleet file {path}: enclaves[{index}] has no 'measurement'")
        try:
            enclaves.append(Enclave(entry.get("name"), EnclaveConfig(
                measurement=entry["measurement"],
                mode=entry.get("mode", "ok"),
                slow_seconds=entry.get("slow_seconds", slow_seconds),
                runtime=entry.get("runtime", runtime),
                canary=entry.get("canary", True),
                login_token_seconds=entry.get("login_token_seconds"),
            )))
        except ConfigError as exc:
            raise ConfigError(f"fleet file {path}: enclaves[{index}]: {exc}") from None
    return enclaves


def _running_simulator_pid(ready_path: Path) -> int | None:
    """PID of a live simulator that owns this state dir, if any (guards against two writers)."""
    try:
        pid = int(json.loads(ready_path.read_text(encoding="utf-8"))["pid"])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if pid != os.getpid() and b"enclave_sim" in cmdline else None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="enclave_sim.py",
        description="Serve simulated TEE enclaves (alfred, nitro and jwt attestation) on loopback.")
    parser.add_argument("--state-dir", required=True, help="where trust.json and ready.json are written")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default 0: pick a free one)")
    parser.add_argument("--bind", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--fleet", help='JSON file {"enclaves": [{"name", "measurement", "mode"}, ...]}')
    source.add_argument("--measurement", help="single enclave 'default', also served at the root")
    parser.add_argument("--mode", choices=MODES, default=None, help="mode of the single enclave (default ok)")
    parser.add_argument("--slow-seconds", type=float, default=DEFAULT_SLOW_SECONDS,
                        help=f"delay of mode 'slow' (default {DEFAULT_SLOW_SECONDS:g}); fleet default too")
    parser.add_argument("--runtime", default=DEFAULT_RUNTIME, help=f"runtime name (default {DEFAULT_RUNTIME})")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.add_argument("--kms-endpoint", default=None,
                        help="KMS endpoint URL the enclaves decrypt through (canary endpoint); credentials from AWS_* variables")
    parser.add_argument("--kms-region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
                        help="region of --kms-endpoint (default AWS_REGION, else us-east-1)")
    parser.add_argument("--vault-addr", default=None,
                        help="Vault/OpenBao address the enclaves log in to and decrypt Transit ciphertexts through (canary endpoint)")
    parser.add_argument("--login-token-seconds", type=int, default=LOGIN_TOKEN_SECONDS,
                        help=f"lifetime of the login tokens the enclaves mint for their own Vault login (default {LOGIN_TOKEN_SECONDS})")
    args = parser.parse_args(argv)
    if args.fleet and args.mode:
        parser.error("--mode applies to --measurement; give per-enclave modes in the fleet file")
    try:
        loopback = ipaddress.ip_address(args.bind).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        # The sim's keys are throwaway and its enclaves answer anyone: never expose them.
        parser.error(f"--bind {args.bind!r} is not a loopback IP address (use 127.0.0.1 or ::1)")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    state_dir = Path(args.state_dir)
    ready_path = state_dir / "ready.json"
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        other = _running_simulator_pid(ready_path)
        if other is not None:
            raise ConfigError(f"state dir {state_dir} is in use by running simulator pid {other}")
        # Remove a leftover ready.json first so nobody mistakes it for this instance's.
        ready_path.unlink(missing_ok=True)
        if args.fleet:
            enclaves = load_fleet(args.fleet, runtime=args.runtime, slow_seconds=args.slow_seconds)
            default_name = None
        else:
            enclaves = [Enclave(DEFAULT_NAME, EnclaveConfig(
                measurement=args.measurement, mode=args.mode or "ok",
                slow_seconds=args.slow_seconds, runtime=args.runtime))]
            default_name = DEFAULT_NAME
        sim = Simulator(enclaves, default_name=default_name, verbose=args.verbose,
                        kms_endpoint=args.kms_endpoint, kms_region=args.kms_region,
                        vault_addr=args.vault_addr, login_token_seconds=args.login_token_seconds)
    except ConfigError as exc:
        print(f"enclave-sim: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"enclave-sim: error: cannot prepare state dir {state_dir}: {exc}", file=sys.stderr)
        return 1

    try:
        server = sim.bind(args.bind, args.port)
    except OSError as exc:
        print(f"enclave-sim: error: cannot listen on {args.bind}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1

    stop = threading.Event()
    # The handler only sets a flag: server.shutdown() from inside a signal handler could
    # deadlock with serve_forever, so the main thread does the shutdown.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                               name="enclave-sim-http", daemon=True)
    serving.start()
    try:
        trust_doc = sim.trust.public_document(base_url=sim.base_url)
        write_atomic(state_dir / "trust.json", json.dumps(trust_doc, indent=2) + "\n")
        write_atomic(state_dir / "nitro_root.pem", sim.trust.root_pem)
        write_atomic(state_dir / "jwks.json", json.dumps(sim.trust.jwks, indent=2) + "\n")
        # Last: its presence means "listening, trust material published".
        write_atomic(ready_path, json.dumps(sim.ready_document(os.getpid()), indent=2) + "\n")
        print(f"enclave-sim: serving {len(sim.enclaves)} enclave(s) at {sim.base_url} "
              f"(pid {os.getpid()}, ready in {time.monotonic() - started:.2f}s)", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            if not serving.is_alive():
                print("enclave-sim: error: HTTP server thread stopped unexpectedly", file=sys.stderr)
                return 1
    except OSError as exc:
        print(f"enclave-sim: error: cannot write state files in {state_dir}: {exc}", file=sys.stderr)
        return 1
    finally:
        ready_path.unlink(missing_ok=True)
        server.shutdown()
        server.server_close()
        shut_down()
    print("enclave-sim: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit, not sys.exit: the key pool's threads may be inside OpenSSL making a key, and
    # interpreter finalization around such a thread can abort the process or, on a loaded
    # machine, outlast the caller's SIGTERM grace period (then it is killed, exit -9).
    os._exit(code)
