# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a module of this collection inside the Ansible worker when its target is the controller.

Every rotation task runs on the controller (``connection: local``). Run as a module, each task
starts a Python process that imports ansible and the collection again: about 0.3 s per task,
most of a rotation. The action plugin of each module (``plugins/action/<module>.py``, one import
line) is this class: when the task runs on the controller with the controller's own Python, it
runs the module's unchanged ``main()`` in the worker Ansible already forked for the task, the
same way the AnsiballZ wrapper runs it in the module process:

- the arguments are those ``ActionBase._execute_module`` sends (``_update_module_args``: check
  mode, diff, no_log, verbosity...), encoded as the wrapper receives them and read by the real
  ``AnsibleModule`` (argument spec, aliases, defaults, no_log values removed from the result);
- the module's printed result goes through the same ``_parse_returned_data`` and the same
  clean-up of internal keys, so the task result, warnings and failures are those of a module
  process; an exception escaping the module becomes a failed result (``MODULE FAILURE`` with
  the traceback, as from a module process), never a success.

Anything else falls back to ordinary module execution (``_execute_module``): another connection
(a bastion over SSH), another interpreter, become, async, a task ``environment``, a module that
declares its own serialization profile, or ``alfred_tee_kms_in_worker: false``.

The worker is forked for one task and exits after it; a loop runs its items in the same
worker, so the module-side globals (parsed arguments, collected warnings) are reset around each
run. Modules that need ``AnsibleModule.tmpdir`` must not use this class: the worker does not run
atexit handlers, so the directory would stay behind.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import pkgutil
import runpy
import sys
import traceback
import warnings
from collections.abc import Sequence

import ansible
from ansible.module_utils import basic
from ansible.module_utils.common import warnings as module_warnings
from ansible.module_utils.common.text.converters import to_bytes
from ansible.plugins.action.normal import ActionModule as NormalAction
from ansible.utils.display import Display

try:  # ansible-core < 2.21 (2.21 parses module output into a result object that cleans itself)
    from ansible.vars.clean import remove_internal_keys
except ImportError:
    remove_internal_keys = None

try:  # ansible-core >= 2.19: arguments and results are encoded with a serialization profile
    from ansible.module_utils.common.json import Direction, get_module_decoder, get_module_encoder
    from ansible.module_utils._internal._ansiballz import _loader as ansiballz_loader
    AnsibleJSONEncoder = None
except ImportError:  # ansible-core 2.17 and 2.18
    from ansible.parsing.ajson import AnsibleJSONEncoder
    get_module_decoder = get_module_encoder = ansiballz_loader = None

display = Display()

OPT_OUT_VAR = "alfred_tee_kms_in_worker"
# The profile module_common gives every module without METADATA (the only kind this runs).
PROFILE = "legacy"
_MODULE_GLOBALS = (
    (basic, ("_ANSIBLE_ARGS", "_ANSIBLE_PROFILE", "_PARSED_MODULE_ARGS")),
    (module_warnings, ("_global_warnings", "_global_deprecations")),
)


def _preload_modules() -> None:
    """Import every module of this collection, and with them their module_utils, in this process.

    The strategy loads each task's action class in the main ansible-playbook process, so this runs
    there once per run; every worker Ansible forks for a task then finds the imports done (boto3
    and cryptography alone take about 1 s to import, once per task otherwise). A module that
    cannot be imported here is left to its task, which reports why.
    """
    package = __name__.rsplit(".", 2)[0] + ".modules"
    try:
        modules = importlib.import_module(package)
    except ImportError:
        return
    for info in pkgutil.iter_modules(modules.__path__):
        with contextlib.suppress(Exception):
            importlib.import_module(f"{package}.{info.name}")


def _preload_profiles() -> None:
    """Import the serialization profile modules of both directions here, once per run.

    ansible-core imports a profile's module on its first use: in each forked worker, where the
    import is lost when the worker exits, so every in-worker module task would pay for it again.
    """
    if get_module_encoder is None:
        return
    for direction in (Direction.CONTROLLER_TO_MODULE, Direction.MODULE_TO_CONTROLLER):
        get_module_encoder(PROFILE, direction)
        get_module_decoder(PROFILE, direction)


_preload_modules()
_preload_profiles()


class ActionModule(NormalAction):
    """The ``normal`` action (what runs a module without an action plugin), run in the worker."""

    def _execute_module(self, module_name=None, module_args=None, tmp=None, task_vars=None, persist_files=False,
                        delete_remote_tmp=None, wrap_async=False, **kwargs):
        task_vars = task_vars if task_vars is not None else {}
        reason = self._why_not_in_worker(task_vars, wrap_async)
        python_module = None if reason else _python_module(module_name or self._task.resolved_action or self._task.action)
        if python_module is not None and hasattr(python_module, "METADATA"):
            reason = "the module declares its own serialization profile"
        if reason:
            display.vvv(f"{self._task.action}: runs as a module process ({reason})")
            return super()._execute_module(module_name=module_name, module_args=module_args, tmp=tmp, task_vars=task_vars,
                                           persist_files=persist_files, delete_remote_tmp=delete_remote_tmp,
                                           wrap_async=wrap_async, **kwargs)
        display.vvv(f"{self._task.action}: runs in the worker (connection local, interpreter {sys.executable})")
        module_name = module_name or self._task.action
        module_args = self._task.args if module_args is None else module_args
        self._update_module_args(module_name, module_args, task_vars, **kwargs)
        self._used_interpreter = "#!" + sys.executable
        res = _run(python_module.__name__, module_args)
        parsed = self._parse_returned_data(res, PROFILE) if get_module_encoder else self._parse_returned_data(res)
        if hasattr(parsed, "remove_internal_keys"):  # ansible-core >= 2.21: what _execute_module does with it
            parsed.remove_internal_keys()
            return parsed.as_result_dict(for_round_trip=True)
        return _clean(parsed)

    def _why_not_in_worker(self, task_vars: dict, wrap_async: bool):
        """None when the task may run in the worker, else why not (shown with -vvv)."""
        if wrap_async or self._task.async_val:
            return "async"
        if getattr(self._connection, "transport", None) != "local":
            return f"connection {getattr(self._connection, 'transport', '?')}"
        if self._play_context.become:
            return "become"
        environment: dict = {}
        self._compute_environment_string(raw_environment_out=environment)
        if environment:
            return "the task sets an environment"
        host_vars = task_vars.get("ansible_delegated_vars", {}).get(self._task.delegate_to, {}) if self._task.delegate_to else task_vars
        if not _truthy(self._templar.template(host_vars.get(OPT_OUT_VAR, True))):
            return f"{OPT_OUT_VAR} is false"
        interpreter = self._templar.template(host_vars.get("ansible_python_interpreter"))
        if not interpreter or not _is_controller_python(str(interpreter)):
            return f"interpreter {interpreter or '(discovered)'} is not the controller's {sys.executable}"
        return None


def _is_controller_python(path: str) -> bool:
    """The same executable in the same bin directory (python and python3 of one venv; not its base Python)."""
    path = os.path.abspath(os.path.expanduser(path))
    try:  # the directories resolved (a linked checkout), not the executable (a venv's python links to its base)
        same_dir = os.path.realpath(os.path.dirname(path)) == os.path.realpath(os.path.dirname(os.path.abspath(sys.executable)))
        return same_dir and os.path.samefile(path, sys.executable)
    except OSError:
        return False


def _truthy(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "no", "off", "0", "n", "f", "")
    return bool(value)


def _python_module(action: str):
    """The module's Python module, from its resolved name (``namespace.collection.module``)."""
    parts = action.split(".")
    if len(parts) != 3:
        return None
    return importlib.import_module(f"ansible_collections.{parts[0]}.{parts[1]}.plugins.modules.{parts[2]}")


def _run(module_fqn: str, module_args: dict) -> dict:
    """Run the module as the AnsiballZ wrapper does; return its rc, stdout and stderr."""
    params = {"ANSIBLE_MODULE_ARGS": module_args}
    stdout, stderr = io.StringIO(), io.StringIO()
    saved = [(owner, name, getattr(owner, name)) for owner, names in _MODULE_GLOBALS for name in names if hasattr(owner, name)]
    for owner, name, value in saved:  # a fresh module-side state, as in a new process
        setattr(owner, name, type(value)() if isinstance(value, (list, dict)) else None)
    modlib_path = os.path.dirname(os.path.dirname(ansible.__file__))
    rc = 0
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), warnings.catch_warnings():
            # runpy warns that the module was imported before (by _preload_modules): intended here.
            warnings.filterwarnings("ignore", message=".*found in sys.modules after import of package", category=RuntimeWarning)
            try:
                if ansiballz_loader is not None:
                    json_params = json.dumps(params, cls=get_module_encoder(PROFILE, Direction.CONTROLLER_TO_MODULE)).encode()
                    ansiballz_loader.run_module(json_params=json_params, profile=PROFILE, module_fqn=module_fqn,
                                                modlib_path=modlib_path, extensions={})
                else:
                    basic._ANSIBLE_ARGS = to_bytes(json.dumps(params, cls=AnsibleJSONEncoder, vault_to_text=True))
                    runpy.run_module(mod_name=module_fqn, init_globals=dict(_module_fqn=module_fqn, _modlib_path=modlib_path),
                                     run_name="__main__", alter_sys=True)
                    print('{"msg": "New-style module did not handle its own exit", "failed": true}')
                    rc = 1
            except SystemExit as exit_:
                rc = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            except Exception:  # what a module process prints on an uncaught exception, and its exit status
                traceback.print_exc()
                rc = 1
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)
    out, err = stdout.getvalue(), stderr.getvalue()
    return {"rc": rc, "stdout": out, "stdout_lines": out.splitlines(), "stderr": err, "stderr_lines": err.splitlines()}


def _clean(data: dict) -> dict:
    """What ``ActionBase._execute_module`` of ansible-core < 2.21 does to a parsed module result before returning it."""
    data.pop("_ansible_suppress_tmpdir_delete", None)
    if "results" in data and (not isinstance(data["results"], Sequence) or isinstance(data["results"], str)):
        data["ansible_module_results"] = data.pop("results")
        display.warning("Found internal 'results' key in module return, renamed to 'ansible_module_results'.")
    remove_internal_keys(data)
    for key in ("stdout", "stderr"):
        if key in data and f"{key}_lines" not in data:
            data[f"{key}_lines"] = (data.get(key) or "").splitlines()
    return data
