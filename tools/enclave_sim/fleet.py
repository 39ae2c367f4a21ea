#!/usr/bin/env python
"""Run the enclave simulator as a managed process: a context manager for tests and benchmarks,
and a start/stop CLI (pidfile) for the Makefile demo.

    with SimulatorFleet(tmp, enclaves=[{"name": "e1", "measurement": M, "mode": "ok"}]) as fleet:
        fleet.urls["e1"]; fleet.trust["alfred_public_keys"]; fleet.configure("e1", mode="down")

    python tools/enclave_sim/fleet.py start --state-dir D (--fleet F | --measurement M)
    python tools/enclave_sim/fleet.py stop --state-dir D
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

SIM_SCRIPT = Path(__file__).resolve().parent / "enclave_sim.py"
READY_FILE = "ready.json"
LOG_FILE = "sim.log"
PID_FILE = "sim.pid"
FLEET_FILE = "fleet.json"
_STDERR_TAIL = 4000


class SimulatorError(RuntimeError):
    """The simulator could not be started, reached or stopped."""


def _log_tail(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no simulator log)"
    return text[-_STDERR_TAIL:].strip() or "(simulator log is empty)"


def _read_ready(path: Path, pid: int) -> dict | None:
    """ready.json of *this* process (pid matches), or None while it is not there yet."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None  # not written yet (it is renamed into place, so never half-written)
    return doc if doc.get("pid") == pid else None


def _pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # A zombie has exited; it only waits for its parent to reap it.
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _is_simulator(pid: int) -> bool:
    try:
        return str(SIM_SCRIPT.name).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _command(python: str, state_dir: Path, *, fleet_path: Path | None, measurement: str | None,
             mode: str | None, slow_seconds: float | None, runtime: str | None, port: int) -> list[str]:
    cmd = [python, str(SIM_SCRIPT), "--state-dir", str(state_dir), "--port", str(port)]
    if fleet_path is not None:
        cmd += ["--fleet", str(fleet_path)]
    else:
        cmd += ["--measurement", measurement]
        if mode:
            cmd += ["--mode", mode]
    if slow_seconds is not None:
        cmd += ["--slow-seconds", str(slow_seconds)]
    if runtime:
        cmd += ["--runtime", runtime]
    return cmd


def wait_for_ready(state_dir: Path, pid: int, *, timeout: float, alive) -> dict:
    """Poll ready.json until this pid wrote it; fail fast with the log if the process died."""
    ready_path = state_dir / READY_FILE
    deadline = time.monotonic() + timeout
    while True:
        doc = _read_ready(ready_path, pid)
        if doc is not None:
            return doc
        if not alive():
            raise SimulatorError(
                f"enclave simulator (pid {pid}) exited before it was ready; its log:\n"
                + _log_tail(state_dir / LOG_FILE))
        if time.monotonic() > deadline:
            raise SimulatorError(
                f"enclave simulator (pid {pid}) did not write {ready_path} within {timeout:g}s; its log:\n"
                + _log_tail(state_dir / LOG_FILE))
        time.sleep(0.05)


class SimulatorFleet:
    """Start one simulator process serving the given enclaves; stop it on exit."""

    def __init__(self, state_dir, enclaves: list[dict] | None = None, *, measurement: str | None = None,
                 mode: str | None = None, slow_seconds: float | None = None, runtime: str | None = None,
                 port: int = 0, python: str = sys.executable, timeout: float = 60.0,
                 kms_endpoint: str | None = None, env: dict | None = None,
                 vault_addr: str | None = None, login_token_seconds: int | None = None) -> None:
        if (enclaves is None) == (measurement is None):
            raise ValueError("give exactly one of enclaves=[...] or measurement=...")
        self.state_dir = Path(state_dir)
        self.enclaves = enclaves
        self.measurement = measurement
        self.mode = mode
        self.slow_seconds = slow_seconds
        self.runtime = runtime
        self.port = port
        self.python = python
        self.timeout = timeout
        self.kms_endpoint = kms_endpoint
        self.vault_addr = vault_addr
        self.login_token_seconds = login_token_seconds
        self.env = env
        self.process: subprocess.Popen | None = None
        self.ready: dict = {}
        self.trust: dict = {}

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "SimulatorFleet":
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fleet_path = None
        if self.enclaves is not None:
            fleet_path = self.state_dir / FLEET_FILE
            fleet_path.write_text(json.dumps({"enclaves": self.enclaves}, indent=2) + "\n", encoding="utf-8")
        cmd = _command(self.python, self.state_dir, fleet_path=fleet_path, measurement=self.measurement,
                       mode=self.mode, slow_seconds=self.slow_seconds, runtime=self.runtime, port=self.port)
        if self.kms_endpoint:
            cmd += ["--kms-endpoint", self.kms_endpoint]
        if self.vault_addr:
            cmd += ["--vault-addr", self.vault_addr]
        if self.login_token_seconds is not None:
            cmd += ["--login-token-seconds", str(self.login_token_seconds)]
        # stderr goes to a file, not a pipe: a chatty simulator can never block on a full pipe.
        with open(self.state_dir / LOG_FILE, "wb") as log:
            self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self.env)
        try:
            self.ready = wait_for_ready(self.state_dir, self.process.pid, timeout=self.timeout,
                                        alive=lambda: self.process.poll() is None)
            self.trust = json.loads((self.state_dir / "trust.json").read_text(encoding="utf-8"))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> "SimulatorFleet":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- accessors -------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        return self.ready["pid"]

    @property
    def base_url(self) -> str:
        return self.ready["base_url"]

    @property
    def urls(self) -> dict[str, str]:
        return {name: entry["url"] for name, entry in self.ready["enclaves"].items()}

    def configure(self, name: str, **cfg) -> dict:
        """Change an enclave at run time (mode, measurement, slow_seconds, runtime, canary)."""
        if name not in self.urls:
            raise SimulatorError(f"could not configure enclave {name!r}: this fleet serves {sorted(self.urls)}")
        url = self.urls[name] + "/_sim/config"
        request = urllib.request.Request(url, data=json.dumps(cfg).encode("utf-8"), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                current = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", errors="replace")
            raise SimulatorError(f"could not configure enclave {name!r}: HTTP {exc.code}: {detail}") from None
        # Keep the in-memory view in step; ready.json on disk still shows the start-up config.
        self.ready["enclaves"][name].update({k: v for k, v in current.items() if k != "name"})
        return current


# -- CLI for the Makefile demo ---------------------------------------------------------------
def _cli_start(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    pid_path = state_dir / PID_FILE
    try:
        old = int(pid_path.read_text().strip())
    except (OSError, ValueError):
        old = 0  # no pidfile, or an unreadable one that start will overwrite
    if old and _pid_alive(old) and _is_simulator(old):
        print(f"fleet: a simulator is already running for {state_dir} (pid {old}); stop it first",
              file=sys.stderr)
        return 1
    cmd = _command(sys.executable, state_dir,
                   fleet_path=Path(args.fleet).resolve() if args.fleet else None,
                   measurement=args.measurement, mode=args.mode, slow_seconds=args.slow_seconds,
                   runtime=args.runtime, port=args.port)
    with open(state_dir / LOG_FILE, "wb") as log:
        # A new session detaches the simulator from make's terminal and process group.
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   start_new_session=True)
    pid_path.write_text(f"{process.pid}\n")
    try:
        ready = wait_for_ready(state_dir, process.pid, timeout=args.timeout,
                               alive=lambda: process.poll() is None)
    except SimulatorError as exc:
        if process.poll() is None:
            process.kill()
            process.wait()
        pid_path.unlink(missing_ok=True)
        print(f"fleet: {exc}", file=sys.stderr)
        return 1
    print(f"fleet: simulator pid {process.pid} serving {len(ready['enclaves'])} enclave(s) at "
          f"{ready['base_url']} (state {state_dir})")
    return 0


def _cli_stop(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir)
    pid_path = state_dir / PID_FILE
    try:
        pid = int(pid_path.read_text().strip())
    except (OSError, ValueError):
        print(f"fleet: no simulator pidfile in {state_dir}; nothing to stop")
        return 0
    # Only signal the pid if it is still our simulator: pids get reused after a crash.
    if not (_pid_alive(pid) and _is_simulator(pid)):
        pid_path.unlink(missing_ok=True)
        print(f"fleet: simulator pid {pid} is not running; removed stale pidfile")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + args.timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        print(f"fleet: simulator pid {pid} ignored SIGTERM for {args.timeout:g}s; killed", file=sys.stderr)
    pid_path.unlink(missing_ok=True)
    print(f"fleet: simulator pid {pid} stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fleet.py", description="Start or stop an enclave simulator.")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start a simulator in the background and wait until ready")
    stop = sub.add_parser("stop", help="stop the simulator recorded in the state dir's pidfile")
    for p in (start, stop):
        p.add_argument("--state-dir", required=True)
        p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait (default 30)")
    source = start.add_mutually_exclusive_group(required=True)
    source.add_argument("--fleet", help="fleet JSON file")
    source.add_argument("--measurement", help="single enclave measurement")
    start.add_argument("--mode")
    start.add_argument("--slow-seconds", type=float)
    start.add_argument("--runtime")
    start.add_argument("--port", type=int, default=0)
    stop.add_argument("--fleet", help="accepted for symmetry with start; unused")
    args = parser.parse_args(argv)
    return _cli_start(args) if args.command == "start" else _cli_stop(args)


if __name__ == "__main__":
    sys.exit(main())
