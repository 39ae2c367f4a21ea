# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a tired operator runs first when something looks wrong: -vvv. It prints every task's
result (AWX keeps every result in its job events whatever the verbosity), so no task may carry
a secret in its result: not a hook command, not the credentials of an enclave URL."""

from __future__ import annotations

import secrets
from pathlib import Path

from workflow_support import ROTATED


def _no_secret_anywhere(result, runner, secret: str) -> None:
    assert secret not in result.stdout + result.stderr
    files = [path for path in runner.evidence_dir.glob("*/*") if path.is_file()]
    assert files
    for path in files:
        assert secret not in path.read_text(encoding="utf-8"), path.name


def test_hook_command_reaches_no_verbose_output(key, runner):
    secret = f"tok-{secrets.token_hex(12)}"
    result = runner.run(["-vvv"], env={"ALFRED_ROTATION_STAGE_CMD": f"true --api-token={secret}"})
    assert result.rc == 0, result.output
    assert result.ran("Run the stage hook", "changed|ok")
    _no_secret_anywhere(result, runner, secret)


def test_enclave_url_credentials_reach_no_verbose_output(key, runner, tmp_path):
    """Credentials in the enclave URLs of the inventory (sent as Basic authentication): -vvv shows
    the URLs without them."""
    secret = f"pw{secrets.token_hex(10)}"
    text = Path(runner.inventory).read_text(encoding="utf-8")
    with_credentials = text.replace("enclave_url: 'http://", f"enclave_url: 'http://ops:{secret}@")
    assert with_credentials.count(secret) == 4, text
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(with_credentials, encoding="utf-8")
    runner.inventory = str(inventory)
    result = runner.run(["-vvv"])
    assert result.rc == 0, result.output
    assert key.state() == ROTATED
    _no_secret_anywhere(result, runner, secret)
