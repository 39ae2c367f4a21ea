# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 22: a rotation (real ansible-playbook runs of playbooks/rotate.yml) against a fleet where one
enclave is a hostile loopback HTTP server beside the simulated ones.

- Item 3: it answers the worst 1 MiB JSON; before, verifying it took hours and stalled the run.
- Item 8: its answer carries terminal control sequences (OSC, CSI, C1, a carriage return, a bidi
  override, a line feed) in the measurement and runtime it claims; before, they reached stdout raw.

Either way the rotation refuses the enclave by name at preflight and changes nothing.
"""

from __future__ import annotations

import json
import sys

from workflow_support import REPO, Runner

sys.path.insert(0, str(REPO / "tests" / "unit" / "plugins" / "module_utils"))

from attest_testlib import AlfredWorld  # noqa: E402
from hostile_answers import HostileServer, json_answers  # noqa: E402

TERMINAL = "\x1b]0;owned\x07\x1b[2J\x9b1A\rSUCCESS\u202e\nok: [localhost]"
# A run that hangs on the hostile answer is killed here: the linear checks take a fraction of a second.
RUN_TIMEOUT = 240


def _raw_controls(text: str) -> list:
    return sorted({hex(ord(c)) for c in text
                   if (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F or c in "\u202e\u2066\u2067\u2068\u2069"})


def _inventory(path, fleet, hostile_url: str) -> str:
    lines = ["all:", "  hosts:", "    localhost:", "      ansible_connection: local",
             f"      ansible_python_interpreter: {sys.executable}", "  children:", "    enclaves:", "      hosts:"]
    for name in ("enclave-1", "enclave-2", "enclave-3"):
        lines.append(f"        {name}: {{enclave_url: '{fleet.urls[name]}'}}")
    lines.append(f"        hostile-1: {{enclave_url: '{hostile_url}'}}")
    lines += ["    probe_enclaves:", "      hosts:", f"        probe-1: {{enclave_url: '{fleet.urls['probe-1']}'}}"]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _rotate(key, fleet, trust, tmp_path, server):
    runner = Runner(key, _inventory(tmp_path / "hosts.yml", fleet, server.url), trust, tmp_path)
    try:
        return runner.run(timeout=RUN_TIMEOUT)
    finally:
        runner.cleanup()


def _summary(stdout: str) -> list:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("ALFRED TEE KMS ") and "SUMMARY" in line)
    return lines[start:]


def test_a_1mib_hostile_enclave_answer_is_refused_without_stalling_the_rotation(key, fleet, trust, tmp_path):
    before = key.state()
    with HostileServer(json_answers()["unterminated_escapes"]) as server:
        result = _rotate(key, fleet, trust, tmp_path, server)
    assert result.rc != 0, result.output
    assert key.state() == before, "a refused preflight must change nothing"
    summary = _summary(result.stdout)
    assert "outcome: FAILED" in summary
    refused = [line for line in summary if line.startswith("  preflight  hostile-1 ")]
    assert refused == ["  preflight  hostile-1  -  malformed: alfred evidence is not JSON (JSONDecodeError)"], summary
    assert "Traceback" not in result.output and "RecursionError" not in result.output


def test_control_sequences_from_an_enclave_never_reach_the_console_raw(key, fleet, trust, tmp_path):
    untrusted = AlfredWorld()  # signs with a key the trust does not hold: refused, its claimed measurement reported

    def answer(request: bytes) -> bytes:
        return json.dumps(untrusted.evidence(json.loads(request), measurement=TERMINAL, runtime=TERMINAL)).encode()

    before = key.state()
    with HostileServer(answer) as server:
        result = _rotate(key, fleet, trust, tmp_path, server)
    assert result.rc != 0, result.output
    assert key.state() == before, "a refused preflight must change nothing"
    assert _raw_controls(result.stdout) == [] and _raw_controls(result.stderr) == [], result.output
    summary = _summary(result.stdout)
    assert not any(line.startswith("ok: [localhost]") for line in summary)  # the line feed forged no line
    shown = "\\x1b]0;owned\\x07\\x1b[2J\\x9b1A\\x0dSUCCESS\\u202e\\x0aok: [localhost]"
    assert f"  preflight  hostile-1  {shown[:12]}  signature: Ed25519 signature does not verify under any trusted public key" \
        in summary, summary
    # The whole measurement in the failed task's result, printed as JSON by the stdout callback: escaped, but
    # for the line feed, which results keep (JSON shows it as \n) and only the summary escapes.
    assert shown.replace("\\", "\\\\").replace("\\\\x0a", "\\n") in result.stdout
    # The evidence records the escaped result too.
    bundle = max((p for p in (tmp_path / "evidence").iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    rows = [row for entry in json.loads((bundle / "summary.json").read_text())["attestation"] for row in entry["results"]
            if row["source"].startswith("http://127.0.0.1:") and "/enclaves/" not in row["source"]]
    assert rows and all(row["measurement"] == shown.replace("\\x0a", "\n") for row in rows), rows
