#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rotation_hook
short_description: Run one of the runbook's rotation hook commands with captured, redacted output
version_added: 0.1.0
description:
  - Runs an operator hook (E(ALFRED_ROTATION_PREFLIGHT_CMD), C(..._STAGE_CMD), C(..._VALIDATE_CMD),
    C(..._ROLLBACK_CMD)) through C(/bin/sh) in its own process group, with a timeout that stops the
    whole group.
  - When the run is interrupted while the hook runs (SIGINT, SIGTERM or SIGHUP reaching this module,
    as Ctrl-C or a cancel of C(ansible-playbook) does), the whole process group of the hook is stopped
    too and the task fails with outcome C(interrupted) and the C(signal).
  - On Linux the module also watches the processes above it up to the C(ansible-playbook) (or
    C(ansible-runner)) process that runs the play, the one the rotation lock names as its owner, and
    stops the hook's group when one of them exits, since not every ansible-core passes a controller's
    SIGTERM on to the module (2.17 does not). A module with no such process above it (a remote
    target) is not watched.
  - The command text is secret (it may hold credentials); given as O(command) it is returned only as
    a SHA-256 digest. Given as O(visible_command) instead (the playbook does this only with
    C(show_commands=true)), the text is returned too. Output is kept as its last lines with known
    secrets and credential patterns masked.
  - In check mode the hook is not run; the result says it would run.
  - With no O(command), the hook is reported as skipped.
author:
  - Alfred security engineering (@alfred-security)
extends_documentation_fragment:
  - alfred.tee_kms.attributes.no_diff
options:
  name:
    description: Which hook this is.
    type: str
    required: true
    choices: [preflight, stage, validate, rollback]
  command:
    description: The shell command line. Secret.
    type: str
  timeout:
    description: Seconds before the hook is stopped and counted as failed.
    type: int
    default: 900
  visible_command:
    description:
      - The command line when its text may be shown in results and evidence (C(show_commands=true)).
      - Mutually exclusive with O(command).
    type: str
  environment:
    description: Extra environment variables for the hook (the runbook's C(KMS_*) inputs, for example).
    type: dict
  chdir:
    description: Working directory of the hook.
    type: path
"""

EXAMPLES = r"""
- name: Run the stage hook
  alfred.tee_kms.rotation_hook:
    name: stage
    command: "{{ rotation_stage_cmd }}"
    timeout: 600
"""

RETURN = r"""
hook:
  description: The hook's outcome.
  type: dict
  returned: always
  sample: {"name": "stage", "outcome": "ok", "rc": 0, "duration_ms": 812, "command_sha256": "sha256:9f86...",
           "stdout_lines": ["rotated tokens/refresh to version 3"], "stderr_lines": []}
  contains:
    outcome:
      description: V(ok), V(failed), V(timeout), V(interrupted), V(would_run) (check mode) or V(skipped).
      type: str
    signal:
      description: The signal that interrupted the run (for example V(SIGINT)).
      type: str
      returned: when interrupted
    group_stopped:
      description: Whether the hook's process group was stopped after the interruption.
      type: bool
      returned: when interrupted
"""

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import TeeKmsError
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.module_base import TeeKmsModule
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import audit
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.hooks import run_hook


class HookFailed(TeeKmsError):
    code = "hook_failed"


def handle(mod):
    p = mod.params
    command = (p["command"] or p["visible_command"] or "").strip()
    hook = {"name": p["name"]}
    if not command:
        hook.update(outcome="skipped", rc=None, duration_ms=0)
        return {"changed": False, "hook": hook, "audit": audit.hook(hook)}
    hook["command_sha256"] = audit.command_digest(command)
    if p["visible_command"]:
        hook["command"] = command
    if mod.check_mode:
        hook.update(outcome="would_run", rc=None, duration_ms=0)
        return {"changed": True, "hook": hook, "audit": audit.hook(hook)}
    hook.update(run_hook(command, p["timeout"], p["environment"], p["chdir"]))
    record = audit.hook(hook)
    if hook["outcome"] != "ok":
        causes = {"timeout": f"it timed out after {p['timeout']}s and was stopped",
                  "interrupted": f"the run was interrupted ({hook.get('signal')}) and the hook's process group was stopped"}
        cause = causes.get(hook["outcome"], f"it exited with code {hook['rc']}")
        error = HookFailed("run", f"the {p['name']} hook", cause)
        mod.fail(error, hook=hook, audit=record)
    return {"changed": True, "hook": hook, "audit": record}


def main():
    TeeKmsModule(dict(
        name=dict(type="str", required=True, choices=["preflight", "stage", "validate", "rollback"]),
        command=dict(type="str", no_log=True),
        timeout=dict(type="int", default=900),
        # Not secret by the operator's choice (show_commands); see DOCUMENTATION.
        visible_command=dict(type="str", no_log=False),
        environment=dict(type="dict"),
        chdir=dict(type="path"),
    ), mutually_exclusive=[("command", "visible_command")]).run(handle)


if __name__ == "__main__":
    main()
