# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""secret_scan module: run main() on real files, read its JSON result."""

from __future__ import annotations

import json

import pytest

from ansible_collections.alfred.tee_kms.plugins.modules import secret_scan
from module_testlib import patch_module_args

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk"


def run_module(capsys, args):
    with patch_module_args(args), pytest.raises(SystemExit) as exc:
        secret_scan.main()
    return exc.value.code, json.loads(capsys.readouterr().out)


def test_preflight_then_validate_since(tmp_path, capsys):
    log = tmp_path / "api.log"
    log.write_text("boot\nold leak AKIAIOSFODNN7EXAMPLE\n")
    rc, before = run_module(capsys, {"paths": [str(tmp_path / "*.log")]})
    assert rc == 0 and before["total"] == 1 and before["audit"]["kind"] == "secret_scan"
    rc, clean = run_module(capsys, {"paths": [str(log)], "since": before["offsets"], "fail_on_new": True})
    assert rc == 0 and clean["new_findings"] == 0 and clean["total"] == 0
    with open(log, "a") as handle:
        handle.write(f"user token {JWT}\n")
    rc, after = run_module(capsys, {"paths": [str(log)], "since": before["offsets"], "fail_on_new": True,
                                    "_ansible_check_mode": True})
    assert rc == 1
    assert after["msg"] == f"Secret scan found 1 new finding(s) (jwt: 1) at {log}:3 (jwt); see samples (masked)"
    assert JWT not in json.dumps(after) and after["samples"][0]["excerpt"] == "user token [REDACTED:jwt]"


def test_baseline_and_missing(tmp_path, capsys):
    log = tmp_path / "a.log"
    log.write_text("AKIAIOSFODNN7EXAMPLE\n")
    rc, out = run_module(capsys, {"paths": [str(log)], "baseline": {"aws_access_key_id": 1}, "fail_on_new": True})
    assert rc == 0 and out["new_findings"] == 0
    rc, out = run_module(capsys, {"paths": [str(log)], "baseline": "0", "fail_on_new": True})
    assert rc == 1 and out["new_findings"] == 1
    rc, out = run_module(capsys, {"paths": [str(tmp_path / "none.log")]})
    assert rc == 1 and out["msg"] == f"Could not scan for secrets: {tmp_path / 'none.log'} matched no file"
    rc, out = run_module(capsys, {"paths": [str(tmp_path / "none.log")], "ignore_missing": True})
    assert rc == 0 and out["missing"] == [str(tmp_path / "none.log")]
    rc, out = run_module(capsys, {"paths": [str(log)], "baseline": "many"})
    assert rc == 1 and "Could not use the secret scan baseline" in out["msg"]


def test_known_secrets_are_no_log_and_found(tmp_path, capsys):
    log = tmp_path / "a.log"
    log.write_text("value=the-known-secret-9 here\n")
    rc, out = run_module(capsys, {"paths": [str(log)], "known_secrets": ["the-known-secret-9"]})
    assert rc == 0 and out["by_detector"] == {"known_secret": 1}
    assert "the-known-secret-9" not in json.dumps(out)
