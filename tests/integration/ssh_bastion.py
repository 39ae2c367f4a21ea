# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A real OpenSSH server on loopback, for the tests that reach a "bastion" over SSH.

It runs in the foreground (``sshd -D -e``) with its own configuration, host key, authorized key
and pid file in a temporary folder, accepts only the fresh client key of that folder for the
current user, and logs every session to a file the tests read (``LogLevel VERBOSE`` logs each
``Starting session: command``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")  # sshd re-executes itself, so it must be started by its absolute path
# Created by systemd (RuntimeDirectory) when the service starts; sshd running as root refuses to start without it.
PRIVSEP_DIR = Path("/run/sshd")
START_TIMEOUT = 15.0


def missing() -> str:
    """Why an SSH bastion cannot run here, or an empty string."""
    if not os.access(SSHD, os.X_OK):
        return f"{SSHD} not found (Debian package openssh-server: apt-get install -y openssh-server; .ci/run installs it)"
    absent = [tool for tool in ("ssh", "ssh-keygen") if not shutil.which(tool)]
    if absent:
        return f"{', '.join(absent)} not found on PATH (Debian package openssh-client)"
    return ""


class SshBastion:
    """``sshd`` on 127.0.0.1 at a free port, until ``stop()``."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.client_key = folder / "client_ed25519"
        self.log = folder / "sshd.log"
        self.port = _free_port()
        self._process: subprocess.Popen | None = None

    def start(self) -> SshBastion:
        host_key = self.folder / "host_ed25519"
        for key in (host_key, self.client_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tee-kms-test", "-f", str(key)],
                           check=True, capture_output=True, timeout=30)
        (self.folder / "authorized_keys").write_text(Path(f"{self.client_key}.pub").read_text())
        config = self.folder / "sshd_config"
        config.write_text("\n".join([
            f"ListenAddress 127.0.0.1:{self.port}",
            f"HostKey {host_key}",
            f"AuthorizedKeysFile {self.folder / 'authorized_keys'}",
            f"PidFile {self.folder / 'sshd.pid'}",
            f"AllowUsers {self.user}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            # The temporary folder lies under the world-writable /tmp, which StrictModes refuses.
            "StrictModes no",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
        ]) + "\n")
        if os.geteuid() == 0:
            PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        with self.log.open("ab") as log:
            self._process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=log, start_new_session=True)
        self._wait_for_banner()
        return self

    def _wait_for_banner(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"sshd exited with status {self._process.returncode} before accepting "
                                   f"connections:\n{self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    if conn.recv(64).startswith(b"SSH-2.0-"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd did not accept connections on 127.0.0.1:{self.port} within {START_TIMEOUT} s:\n"
                           f"{self.log.read_text()}")

    def stop(self) -> None:
        """End the listener (sessions end with their client: no ControlPersist master keeps one open)."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None

    def sessions(self) -> int:
        """How many commands clients ran over SSH so far (one per Ansible low-level command)."""
        return self.log.read_text().count("Starting session: command")

    def inventory_vars(self, python: str, remote_tmp: Path) -> dict:
        """The host variables of an Ansible host reached over SSH on this bastion."""
        return {
            "ansible_connection": "ssh",
            "ansible_host": "127.0.0.1",
            "ansible_port": self.port,
            "ansible_user": self.user,
            "ansible_ssh_private_key_file": str(self.client_key),
            # No user ssh_config, agent keys or known_hosts of the machine; no ControlPersist master
            # that would outlive the test (and this sshd) for a minute.
            "ansible_ssh_args": "-o ControlMaster=no",
            "ansible_ssh_common_args": "-F /dev/null -o IdentitiesOnly=yes -o StrictHostKeyChecking=no "
                                       "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            "ansible_python_interpreter": python,
            "ansible_remote_tmp": str(remote_tmp),
        }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
