# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for the rotation workflow tests: real ansible-playbook runs of playbooks/rotate.yml
against a simulated enclave fleet and the local KMS, with faults injected from the outside.

Nothing is mocked. The key is created and inspected with the collection's own module_utils
(``LocalKmsProvider``); canaries are encrypted under the key while a run is in progress and
decrypted afterwards through the attested path with fresh evidence from a live enclave.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
PLAYBOOK = REPO / "playbooks" / "rotate.yml"
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO / "tools" / "enclave_sim"))

from fleet import SimulatorFleet  # noqa: E402

from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local import LocalKmsProvider  # noqa: E402
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.rules import decrypt_purpose  # noqa: E402
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.probes import evidence_from  # noqa: E402

KEY_ID = "tokens/refresh"
M_CURRENT = "a1" * 48   # image of enclave-1 and enclave-2 (allowed before and after)
M_NEW = "b2" * 48       # image of enclave-3 (added by the rotation)
M_PROBE = "c3" * 48     # image of probe-1 (never allowed: validate's "disallowed is denied" probe)
TARGET = sorted([M_CURRENT, M_NEW])

ENCLAVES = [
    {"name": "enclave-1", "measurement": M_CURRENT},
    {"name": "enclave-2", "measurement": M_CURRENT},
    {"name": "enclave-3", "measurement": M_NEW},
    {"name": "probe-1", "measurement": M_PROBE},
    # Not in the inventory: stands in for the token API behind ALFRED_ROTATION_API_HEALTHCHECK_URL.
    {"name": "api", "measurement": M_CURRENT},
]

# Inputs of the runbook a test starts from; hooks and other inputs are removed from the
# inherited environment so that the developer's shell cannot change what a test runs.
RUNBOOK_ENV_PREFIXES = ("KMS_", "NEXT_KMS_", "ALFRED_ROTATION_", "ALFRED_ENV", "ALFRED_TEE_KMS_", "ALFRED_EVIDENCE")

# The state the tests compare with: every version enabled, no lock, and either the snapshot
# (pre-rotation primary and allow-list) or the fully rotated key. A rollback never locks out a
# live enclave: enclave-3 runs M_NEW, which the rotation allowed, so the rollback keeps it.
AT_SNAPSHOT = {"primary": 1, "versions": {1: "enabled", 2: "enabled"}, "allowed": TARGET,
               "snapshot_status": "rolled_back", "lock": None}
ROTATED = {"primary": 2, "versions": {1: "enabled", 2: "enabled"}, "allowed": TARGET,
           "snapshot_status": "completed", "lock": None}
SNAPSHOT_RECORD = {"primary_version": 1, "allowed_measurements": [M_CURRENT], "next_version": 2, "target_measurements": TARGET}


# --- the fleet -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def fleet(tmp_path_factory):
    with SimulatorFleet(tmp_path_factory.mktemp("sim"), enclaves=ENCLAVES) as running:
        yield running


@pytest.fixture(autouse=True)
def _fleet_back_to_ok(fleet):
    """Tests switch enclaves to failing modes mid-run; the next test starts from a healthy fleet."""
    yield
    for name in fleet.urls:
        original = {e["name"]: e["measurement"] for e in ENCLAVES}
        fleet.configure(name, mode="ok", measurement=original[name])


@pytest.fixture(scope="session")
def trust(fleet):
    return {"public_keys": [fleet.trust["alfred_public_keys"][0]]}


@pytest.fixture(scope="session")
def inventory(fleet, tmp_path_factory):
    urls = fleet.urls
    lines = ["all:", "  hosts:", "    localhost:", "      ansible_connection: local",
             f"      ansible_python_interpreter: {sys.executable}", "  children:", "    enclaves:", "      hosts:"]
    for name in ("enclave-1", "enclave-2", "enclave-3"):
        lines.append(f"        {name}: {{enclave_url: '{urls[name]}'}}")
    lines += ["    probe_enclaves:", "      hosts:", f"        probe-1: {{enclave_url: '{urls['probe-1']}'}}"]
    path = tmp_path_factory.mktemp("inventory") / "hosts.yml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def sim_mode_command(url: str, mode: str) -> str:
    """Shell command (for a hook) that switches a simulated enclave's mode mid-run."""
    body = json.dumps({"mode": mode})
    code = ("import sys, urllib.request; urllib.request.urlopen(urllib.request.Request("
            "sys.argv[1], data=sys.argv[2].encode(), method='POST', headers={'Content-Type': 'application/json'}), timeout=10)")
    return " ".join(shlex.quote(part) for part in (sys.executable, "-c", code, url + "/_sim/config", body))


# --- the key ---------------------------------------------------------------------------------

class Key:
    """The key under test in its own store file, read and used through the collection's module_utils."""

    def __init__(self, store_path: Path, trust: dict, fleet):
        self.store_path = store_path
        self.provider = LocalKmsProvider(str(store_path))
        self.fleet = fleet
        self.provider.create_key(KEY_ID, [M_CURRENT], "sha384", trust)
        self.canaries: list = []

    def raw(self) -> dict:
        return self.provider.describe_key(KEY_ID)

    def store_bytes(self) -> bytes:
        return self.store_path.read_bytes()

    def state(self) -> dict:
        """The exact facts the invariants are about."""
        raw = self.raw()
        snapshot = raw.get("snapshot") or {}
        return {"primary": raw["primary_version"], "versions": {v["version"]: v["state"] for v in raw["versions"]},
                "allowed": sorted(raw["allowed_measurements"]), "snapshot_status": snapshot.get("status"),
                "lock": raw.get("lock")}

    def snapshot(self) -> dict:
        snapshot = dict(self.raw().get("snapshot") or {})
        return {k: sorted(v) if isinstance(v, list) else v for k, v in snapshot.items() if k in SNAPSHOT_RECORD}

    # -- canaries: tokens encrypted under the key at every step of a run ------------------------
    def encrypt_canary(self, version=None, label="") -> dict:
        plaintext = os.urandom(32)
        raw = self.raw()
        used = raw["primary_version"] if version is None else version
        context = {"token_key_id": KEY_ID, "token_version": str(used)}
        ciphertext = self.provider.encrypt(KEY_ID, plaintext, context, version=used)
        canary = {"label": label, "version": used, "plaintext": plaintext, "context": context, "ciphertext": ciphertext}
        self.canaries.append(canary)
        return canary

    @contextlib.contextmanager
    def canaries_during(self, interval: float = 0.5):
        """Encrypt a canary under the current primary every ``interval`` seconds while the block runs
        (what the token service keeps doing during a rotation)."""
        stop = threading.Event()
        errors: list = []

        def loop():
            while not stop.is_set():
                try:
                    self.encrypt_canary(label="during")
                except Exception as exc:  # the store must stay readable and a primary usable at every step
                    errors.append(repr(exc))
                stop.wait(interval)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(10)
        assert not errors, f"encrypting under the primary failed during the run: {errors[:3]}"

    def decrypt_all_canaries(self, enclave: str = "enclave-1") -> dict:
        """Decrypt every canary through the attested path (fresh evidence from a live allowed enclave);
        return how many were checked per version."""
        assert self.canaries, "no canary was encrypted"
        url = self.fleet.urls[enclave]
        per_version: dict = {}
        for canary in self.canaries:
            attestation = evidence_from(url, "alfred", 10, decrypt_purpose(KEY_ID))
            plaintext = self.provider.decrypt(KEY_ID, canary["ciphertext"], canary["context"], attestation)
            assert plaintext == canary["plaintext"], f"canary {canary['label']} under v{canary['version']} decrypted to other bytes"
            per_version[canary["version"]] = per_version.get(canary["version"], 0) + 1
        return per_version


@pytest.fixture
def key(tmp_path, trust, fleet):
    store_dir = tmp_path / "kms"
    store_dir.mkdir(mode=0o700)
    created = Key(store_dir / "store.json", trust, fleet)
    created.encrypt_canary(label="before")
    return created


# --- running the playbook --------------------------------------------------------------------

FATAL = re.compile(r"^(?:fatal|failed): \[localhost\](?: \(item=[^)]*\))?(?:: FAILED!)? => (\{.*\})\s*$")
TASK = re.compile(r"^TASK \[(.*)\] \**$")
RECAP = re.compile(r"^localhost\s+: (.*)$")


class Result:
    def __init__(self, rc, stdout, stderr, duration):
        self.rc, self.stdout, self.stderr, self.duration = rc, stdout, stderr, duration

    def __repr__(self):
        return f"<Result rc={self.rc} {self.duration:.1f}s>"

    @property
    def output(self) -> str:
        return f"rc={self.rc}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"

    @property
    def flat(self) -> str:
        """The output with its lines joined: ansible-core 2.17 wraps warnings to the terminal width
        (at spaces, or after a hyphen), so a message is searched for here, not in ``output``."""
        return " ".join(self.output.replace("-\n", "-").split())

    @property
    def recap(self) -> dict:
        lines = [m.group(1) for m in map(RECAP.match, self.stdout.splitlines()) if m]
        assert lines, f"no PLAY RECAP in the output\n{self.output}"
        return {k: int(v) for k, v in (pair.split("=") for pair in lines[-1].split())}

    def failures(self) -> list:
        """[(task name, result dict)] of every failed task, in order."""
        found, task = [], None
        for line in self.stdout.splitlines():
            header = TASK.match(line)
            if header:
                task = header.group(1)
                continue
            fatal = FATAL.match(line)
            if fatal:
                found.append((task, json.loads(fatal.group(1))))
        return found

    def failed_tasks(self) -> list:
        return [task for task, dummy in self.failures()]

    def messages(self) -> list:
        return [" ".join(str(result.get("msg", "")).split()) for dummy, result in self.failures()]

    def ran(self, task_fragment: str, status: str = "ok|changed") -> bool:
        """Whether a task whose name contains the fragment reported one of the statuses."""
        task = None
        for line in self.stdout.splitlines():
            header = TASK.match(line)
            if header:
                task = header.group(1)
            elif task and task_fragment in task and re.match(rf"^({status}): \[localhost\]", line):
                return True
        return False


class Runner:
    """Builds the runbook environment and command line for one key; runs or starts ansible-playbook."""

    def __init__(self, key: Key, inventory: str, trust: dict, workdir: Path):
        self.key, self.inventory, self.trust, self.workdir = key, inventory, trust, workdir
        self.evidence_dir = workdir / "evidence"
        self.processes: list = []

    def env(self, extra=None, versions=True) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(RUNBOOK_ENV_PREFIXES)}
        env.update({"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
                    "PATH": str(BIN) + os.pathsep + env.get("PATH", ""), "ALFRED_TEE_KMS_STORE": str(self.key.store_path),
                    "KMS_KEY_ID": KEY_ID})
        if versions:
            env.update({"KMS_KEY_VERSION": "1", "NEXT_KMS_KEY_VERSION": "2", "KMS_ALLOWED_MEASUREMENTS": f"{M_CURRENT},{M_NEW}"})
        for name, value in (extra or {}).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def command(self, args=(), env_name="staging") -> list:
        cmd = [str(BIN / "ansible-playbook"), "-i", self.inventory, str(PLAYBOOK),
               "-e", json.dumps({"attestation_trust": self.trust}), "-e", f"evidence_dir={self.evidence_dir}",
               "-e", "health_retries=0", "-e", "health_delay=0"]
        if env_name is not None:
            cmd += ["-e", f"env={env_name}"]
        return cmd + list(args)

    def start(self, args=(), env=None, versions=True, env_name="staging", prefix=()) -> subprocess.Popen:
        """Start ansible-playbook in its own process group (so a test can SIGKILL all of it);
        ``prefix`` runs it under another command (unshare, for example)."""
        out = open(self.workdir / f"run-{len(self.processes)}.out", "w+")
        err = open(self.workdir / f"run-{len(self.processes)}.err", "w+")
        proc = subprocess.Popen([*prefix, *self.command(args, env_name)], env=self.env(env, versions), cwd=str(self.workdir),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
        proc.started = time.monotonic()
        proc.files = (out, err)
        self.processes.append(proc)
        return proc

    @staticmethod
    def finish(proc, timeout=240) -> Result:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            pytest.fail(f"ansible-playbook did not finish within {timeout}s; killed")
        out, err = proc.files
        out.seek(0)
        err.seek(0)
        result = Result(proc.returncode, out.read(), err.read(), time.monotonic() - proc.started)
        out.close()
        err.close()
        return result

    def run(self, args=(), env=None, timeout=240, versions=True, env_name="staging") -> Result:
        return self.finish(self.start(args, env, versions, env_name), timeout)

    def cleanup(self):
        for proc in self.processes:
            if proc.poll() is None:
                kill_group(proc)
            for handle in proc.files:
                if not handle.closed:
                    handle.close()


def _descendants(pid: int) -> set:
    """Every live descendant of ``pid``, from /proc (Ansible's workers leave the process group:
    each calls setsid, so killing the group alone would let a worker finish its task)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), set()).add(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def kill_group(proc) -> None:
    """SIGKILL the run as a crash of the controller (a killed container) would: ansible-playbook,
    its process group and every descendant, including the workers in sessions of their own; then
    wait until every one of them is gone."""
    # Freeze first (nothing can fork or write while its tree is collected), then kill.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGSTOP)
    victims = set()
    while True:
        found = _descendants(proc.pid) - victims
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        victims |= found
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(30)
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() and "Z" not in _state(pid) for pid in victims):
        if time.monotonic() > deadline:
            raise AssertionError(f"descendants of {proc.pid} still run 30 s after SIGKILL")
        time.sleep(0.01)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


@pytest.fixture
def runner(key, inventory, trust, tmp_path):
    created = Runner(key, inventory, trust, tmp_path)
    yield created
    created.cleanup()


@pytest.fixture
def run_playbook(runner):
    """``run_playbook(args, env, timeout)`` -> Result(rc, stdout, stderr, duration)."""
    def run(args=(), env=None, timeout=240, **kwargs):
        return runner.run(args, env, timeout, **kwargs)
    return run


@pytest.fixture
def key_state(key):
    return key.state


# --- other fault tools ------------------------------------------------------------------------

def wait_for(predicate, timeout: float, what: str, interval: float = 0.05, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"ansible-playbook exited (rc {proc.returncode}) before {what}")
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


@pytest.fixture
def hook_pids(tmp_path):
    """Hooks run in their own session, so killing ansible-playbook's group leaves them running:
    a hook that records its pid here is killed at teardown."""
    path = tmp_path / "hook-pids"
    yield path
    if path.exists():
        for line in path.read_text().split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.killpg(int(line), signal.SIGKILL)


@pytest.fixture
def unwritable_dir():
    """(make_unwritable_command(dir), restore(dir)): root ignores mode bits, so as root the
    directory is made immutable (chattr +i) instead of chmod 0500."""
    touched: list = []

    def command(directory: Path) -> str:
        touched.append(directory)
        if os.geteuid() != 0:
            return f"chmod 0500 {shlex.quote(str(directory))}"
        return f"chattr +i {shlex.quote(str(directory))}"

    def restore(directory: Path) -> None:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(directory)], check=True)
        os.chmod(directory, 0o700)

    def probe(tmp: Path) -> None:
        """Skip when this machine cannot make a directory unwritable for the current user."""
        probe_dir = tmp / "probe-unwritable"
        probe_dir.mkdir()
        done = subprocess.run(command(probe_dir), shell=True, capture_output=True, text=True, check=False)
        try:
            (probe_dir / "x").write_text("x")
            writable = True
        except OSError:
            writable = False
        restore(probe_dir)
        if done.returncode != 0 or writable:
            pytest.skip(f"cannot make a directory unwritable here ({done.stderr.strip() or 'writes still succeed'})")

    yield command, restore, probe
    for directory in touched:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            restore(directory)
