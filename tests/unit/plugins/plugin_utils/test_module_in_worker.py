# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugin_utils/_module_in_worker: the in-worker run of a module and the decision to use it.

The playbook-level behaviour (same results as a module process, the fallback) is in
tests/integration/test_in_worker_playbooks.py.
"""

from __future__ import annotations

import json
import os
import sys

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common import warnings as module_warnings

from ansible_collections.alfred.tee_kms.plugins.plugin_utils import _module_in_worker as worker

INFO = "ansible_collections.alfred.tee_kms.plugins.modules.kms_key_info"


def _args(**extra):
    # What _update_module_args adds that every ansible-core reads; AnsibleModule ignores none of them.
    return dict(_ansible_check_mode=False, _ansible_no_log=False, _ansible_diff=False, **extra)


def _result(res):
    return json.loads(res["stdout"].strip().splitlines()[-1])


def test_runs_a_real_module_and_restores_the_module_side_state(tmp_path):
    before = [getattr(basic, name, None) for name in ("_ANSIBLE_ARGS", "_PARSED_MODULE_ARGS")]
    warnings_before = module_warnings.get_warning_messages()
    res = worker._run(INFO, _args(key_id="tokens/none", store_path=str(tmp_path / "store.json"), missing_ok=True))
    assert res["rc"] == 0, res
    assert _result(res)["exists"] is False
    assert [getattr(basic, name, None) for name in ("_ANSIBLE_ARGS", "_PARSED_MODULE_ARGS")] == before
    assert module_warnings.get_warning_messages() == warnings_before


def test_argument_spec_failure_is_a_failed_result(tmp_path):
    res = worker._run(INFO, _args(key_id="k", store_path=str(tmp_path / "s.json"), colour="red"))
    assert res["rc"] == 1 and _result(res)["failed"] is True and "colour" in _result(res)["msg"]


@pytest.mark.parametrize("source, message", [
    ("raise RuntimeError('the module exploded')\n", "the module exploded"),  # an exception escaping the module
    ("x = 1\n", "did not handle its own exit"),  # a module that returns without a result
])
def test_a_module_that_does_not_exit_cleanly_is_a_failure_not_a_success(tmp_path, monkeypatch, source, message):
    (tmp_path / "broken_module.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    res = worker._run("broken_module", _args())
    assert res["rc"] == 1
    assert message in res["stdout"] + res["stderr"]
    assert '"changed": false' not in res["stdout"]  # nothing that parses as a success


def test_the_controller_python_is_the_same_executable_in_the_same_bin_directory(tmp_path):
    assert worker._is_controller_python(sys.executable)
    sibling = os.path.join(os.path.dirname(sys.executable), "python")
    if os.path.exists(sibling):
        assert worker._is_controller_python(sibling)
    link = tmp_path / "python3"
    link.symlink_to(sys.executable)  # the same file elsewhere: another environment, not the controller's
    assert not worker._is_controller_python(str(link))
    assert not worker._is_controller_python(str(tmp_path / "missing"))


@pytest.mark.parametrize("value, expected", [(False, False), ("false", False), ("no", False), ("0", False),
                                             (True, True), ("yes", True), ("true", True)])
def test_opt_out_values(value, expected):
    assert worker._truthy(value) is expected


@pytest.mark.skipif(worker.get_module_encoder is None, reason="ansible-core < 2.19 has no serialization profiles")
def test_the_serialization_profiles_are_imported_before_any_worker_is_forked():
    """Imported in a worker, a profile module is lost when the worker exits: every module task would import it again."""
    import subprocess

    from ansible.module_utils._internal._json import get_module_serialization_profile_module_name

    names = [get_module_serialization_profile_module_name(worker.PROFILE, c2m) for c2m in (True, False)]
    code = ("import sys\n"
            "from ansible_collections.alfred.tee_kms.plugins.plugin_utils import _module_in_worker\n"
            f"print(all(name in sys.modules for name in {names!r}))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip() == "True"
