# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""rotation_hook: a task that gives neither command nor visible_command runs the hook of its name
as the rotation's inputs give it (rotation_<name>_cmd, the playbook variable, the runbook's
ALFRED_ROTATION_<NAME>_CMD), read here on the controller. The command text never passes through
a fact or the plan: it is secret unless show_commands. The hook then runs as a module process, as
before (its process group, signals and timeout are its own, not the worker's).
"""

from __future__ import annotations

import os

from ansible.plugins.action.normal import ActionModule as NormalAction

from ansible_collections.alfred.tee_kms.plugins.plugin_utils import _rotation_inputs as inputs_table


class ActionModule(NormalAction):
    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars if task_vars is not None else {}
        args = self._task.args
        if not args.get("command") and not args.get("visible_command") and args.get("name") in inputs_table.HOOKS:
            template = self._templar.template
            command = inputs_table.hook_command(task_vars, template, args["name"])
            if not command:
                return {"skipped": True, "changed": False, "skip_reason": f"no {args['name']} hook is configured"}
            shown = inputs_table.resolve_one(inputs_table.BY_NAME["show_commands"], task_vars, template)
            args = dict(args, **{"visible_command" if shown else "command": command})
            # Hooks run in the directory ansible-playbook was started from, so a relative command works as typed.
            args.setdefault("chdir", os.getcwd())
            self._task.args = args
        return super().run(tmp, task_vars)
