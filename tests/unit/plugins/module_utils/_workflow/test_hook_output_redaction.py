# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 22 item 10: a hook's output is redacted as one text, not line by line: a secret the hook
prints as wrapped base64 (base64 -w 64 / -w 76) is one value, also when only its last lines are
among the lines kept (its first lines, before them, are read too). Real hooks run by /bin/sh."""

from __future__ import annotations

import base64
import secrets

import pytest

from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.hooks import OUTPUT_LINES, run_hook


@pytest.mark.parametrize("width", [64, 76])
@pytest.mark.parametrize("after", [0, OUTPUT_LINES - 3], ids=["at_the_end", "across_the_kept_boundary"])
def test_wrapped_base64_of_a_secret_in_hook_output(width, after):
    secret = "HookSecret-" + secrets.token_urlsafe(120)
    command = (f"seq 1 300; printf 'deploy:%s' \"$HOOK_SECRET\" | base64 -w {width}; "
               f"seq 1 {after} | sed 's/^/after /'; echo done")
    result = run_hook(command, timeout=30, env={"HOOK_SECRET": secret}, secrets=[secret])
    assert result["outcome"] == "ok", result
    lines = result["stdout_lines"]
    assert lines[-1] == "done" and len(lines) == OUTPUT_LINES
    encoded = base64.b64encode(b"deploy:" + secret.encode()).decode()
    flat = "".join(lines)
    for i in range(8, len(encoded) - 16, 4):
        assert encoded[i:i + 16] not in flat, (encoded[i:i + 16], lines)
    assert any(line.startswith("ZGVwbG95") and "[REDACTED:known_secret]" in line for line in lines), lines
