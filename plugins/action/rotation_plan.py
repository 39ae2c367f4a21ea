# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rotation plan of a key, resolved on the controller (see the module rotation_plan).

``step: plan`` reads the inputs (plugin_utils/_rotation_inputs.py), the enclaves of the inventory and
has rotation_inputs check them; it sets the fact ``rotation_plan`` and never fails, so the refusals
all come from ``step: admit``, once every key of the play has its plan.
"""

from __future__ import annotations

from ansible_collections.alfred.tee_kms.plugins.plugin_utils import _evidence_state as evidence_state
from ansible_collections.alfred.tee_kms.plugins.plugin_utils import _rotation_inputs as inputs_table
from ansible_collections.alfred.tee_kms.plugins.plugin_utils import _rotation_plan as rotation_plan
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._module_in_worker import ActionModule as WorkerAction

FACT = "rotation_plan"


def _text(warning) -> str:
    """A module warning as text: ansible-core >= 2.19 returns WarningSummary objects (the text in .event.msg)."""
    return str(getattr(getattr(warning, "event", None), "msg", None) or warning)


class ActionModule(WorkerAction):
    _VALID_ARGS = frozenset(("step",))

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars if task_vars is not None else {}
        step = self._task.args.get("step")
        if step == "plan":
            return self._plan(task_vars)
        if step == "admit":
            return self._admit(task_vars)
        return {"failed": True, "msg": f"Could not run rotation_plan: step must be plan or admit, not {step!r}"}

    def _hostvar(self, task_vars: dict, host: str, name: str, default=None):
        hostvars = task_vars.get("hostvars") or {}
        try:
            return hostvars[host].get(name, default) if host in hostvars else default
        except Exception:  # an enclave host whose variable does not render is an enclave without a URL
            return default

    def _plan_of(self, task_vars: dict, host: str):
        """Another host's plan. ``hostvars[host]`` computes every variable of that host, so N keys reading each
        other's plans would cost N x N of them (0.5 s a key at 50 keys); the plan is a fact this run set, read from
        the facts Ansible keeps for the run when it can, else through hostvars."""
        facts = getattr(getattr(task_vars.get("hostvars"), "_variable_manager", None), "_nonpersistent_fact_cache", None)
        plan = facts[host].get(FACT) if facts is not None and host in facts else None  # None: no such cache here
        return plan if isinstance(plan, dict) else self._hostvar(task_vars, host, FACT)

    def _inventory_urls(self, task_vars: dict, group: str) -> list:
        hosts = (task_vars.get("groups") or {}).get(group) or []
        return [url for url in (self._hostvar(task_vars, h, "enclave_url") for h in hosts) if url]

    def _plan(self, task_vars: dict) -> dict:
        template = self._templar.template
        action, conflict = inputs_table.action(task_vars, template)
        failure = None
        try:
            inputs = inputs_table.resolve(task_vars, template)
        except ValueError as exc:  # a number that is not one: refused like any bad input, at admission
            inputs, failure = inputs_table.resolve({}, template, environ={}), {"msg": str(exc)}
        urls = rotation_plan.enclaves(inputs, self._inventory_urls(task_vars, "enclaves"), self._inventory_urls(task_vars, "probe_enclaves"))
        if failure is None:
            checked = self._execute_module(module_name="alfred.tee_kms.rotation_inputs", task_vars=task_vars,
                                           module_args=rotation_plan.module_args(inputs, action, urls))
            failure = checked if checked.get("failed") or "rotation" not in checked else None
        if failure is not None:
            plan = rotation_plan.refused(inputs, action, urls, failure)
        else:
            plan = rotation_plan.complete(checked["rotation"], inputs, action, urls)
            plan.update(audit=checked.get("audit"), warnings=[_text(w) for w in checked.get("warnings") or []])
        plan.update(action_conflict=conflict, allow_no_evidence=inputs["allow_no_evidence"])
        # Not cached: a plan is this run's, and a fact cache would hand it to the next run.
        return {"changed": False, "ansible_facts": {FACT: plan}, "_ansible_facts_cacheable": False}

    def _admit(self, task_vars: dict) -> dict:
        host = task_vars.get("inventory_hostname")
        # Every host of the play, not only those still running: a host whose admission already failed (the first
        # of two that name one key) is no longer in ansible_play_hosts when its twin's task is queued.
        play_hosts = task_vars.get("ansible_play_hosts_all") or task_vars.get("ansible_play_hosts") or [host]
        running = set(task_vars.get("ansible_play_hosts") or [host])
        plans = {}
        for other in play_hosts:
            plan = self._plan_of(task_vars, other) if other != host else task_vars.get(FACT)
            if isinstance(plan, dict):
                plans[other] = rotation_plan.for_admission(plan)  # a fact a module returned: data, not templates
        if host not in plans:
            return {"failed": True, "msg": f"Could not admit the rotation of inventory host {host}: it has no rotation_plan (run step=plan first)"}
        unread = [other for other in play_hosts if other not in plans and other in running]
        if unread:  # fail closed: a key whose plan cannot be read could be this very key, named twice
            return {"failed": True, "msg": f"Could not admit the rotation of inventory host {host}: the plan of inventory host(s)"
                    f" {', '.join(unread)} could not be read, so a key named twice could not be ruled out. Nothing was changed."}
        groups = task_vars.get("groups") or {}
        context = {
            "awx": "awx_job_id" in task_vars or "tower_job_id" in task_vars,
            "in_kms_keys": host in (groups.get("kms_keys") or []),
            "kms_keys_empty": "kms_keys" in groups and not groups["kms_keys"],
            "all_hosts": list(groups.get("all") or []),
            "evidence_cause": evidence_state.missing_cause(),
        }
        return self._execute_module(module_name="alfred.tee_kms.rotation_plan", task_vars=task_vars,
                                    module_args={"step": "admit", "plans": plans, "host": host, "context": context})
