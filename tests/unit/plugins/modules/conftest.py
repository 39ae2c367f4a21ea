# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a module's ``main()`` in-process with real arguments and read its JSON result.

The pattern of community.hashi_vault's ``tests/unit/plugins/modules/conftest.py``: set the
module arguments, run ``main()`` under ``pytest.raises(SystemExit)`` and parse stdout.
``patch_module_args`` (module_testlib) works on every ansible-core the collection supports.
"""

from __future__ import annotations

import json
import os

import pytest
from module_testlib import materials, patch_module_args


class ModuleRun:
    def __init__(self, result, code, output):
        self.result = result
        self.code = code
        self.output = output  # the raw stdout, for leak checks

    @property
    def failed(self):
        return bool(self.result.get("failed"))


@pytest.fixture
def store_path(tmp_path, monkeypatch):
    for name in ("ALFRED_TEE_KMS_STORE", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return str(tmp_path / "kms" / "store.json")


@pytest.fixture
def run_module(capsys, store_path, monkeypatch):
    """``run_module(module, check_mode=False, diff=False, **args)`` -> ModuleRun."""
    runs = []
    try:  # ansible-core 2.19+: once any controller code was imported in this process (other
        # tests do), module warnings go to the controller display instead of the result.
        from ansible.module_utils import _internal

        monkeypatch.setattr(_internal, "is_controller", False, raising=False)
    except ImportError:
        pass

    def run(module, check_mode=False, diff=False, **args):
        args.setdefault("store_path", store_path)
        args = {k: v for k, v in args.items() if v is not None}
        args.update(_ansible_check_mode=check_mode, _ansible_diff=diff)
        capsys.readouterr()
        with patch_module_args(args), pytest.raises(SystemExit) as info:
            module.main()
        output = capsys.readouterr().out
        result = json.loads(output)
        run_ = ModuleRun(result, info.value.code, output)
        assert run_.code == (1 if run_.failed else 0), output
        runs.append(run_)
        return run_

    run.runs = runs
    return run


@pytest.fixture
def store_bytes(store_path):
    def read():
        try:
            with open(store_path, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    return read


@pytest.fixture
def assert_no_material(store_path, run_module):
    """Check that no module output of the test contains key material from the store."""
    def check():
        if not os.path.exists(store_path):
            return
        secrets = materials(store_path)
        assert secrets
        for run_ in run_module.runs:
            for secret in secrets:
                assert secret not in run_.output

    return check
