# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``_common`` is what every module imports: it must not import ``_kms`` (directly, in a function,
or through importlib), else a module that has nothing to do with a KMS loads every provider."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ansible_collections.alfred.tee_kms.plugins.module_utils._common import errors

COMMON = Path(errors.__file__).resolve().parent
FILES = sorted(COMMON.rglob("*.py"))


def _names_kms(dotted: str) -> bool:
    return "_kms" in dotted.split(".")


def kms_imports(source: str) -> list:
    """(line, what) of every import of ``_kms`` in ``source``: import statements anywhere in the
    tree (a lazy import in a function counts) and module names given to importlib as text."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names if _names_kms(alias.name))
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] + [f"{node.module or ''}.{alias.name}" for alias in node.names]
            if any(_names_kms(name) for name in names):
                found.append((node.lineno, f"from {'.' * node.level}{node.module or ''} import {', '.join(a.name for a in node.names)}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and any(_names_kms(word) for word in node.value.split()):
            found.append((node.lineno, repr(node.value)))
    return found


def test_the_check_finds_each_way_of_importing_kms():
    source = ("from ansible_collections.alfred.tee_kms.plugins.module_utils._kms import registry\n"
              "def f():\n    import ansible_collections.alfred.tee_kms.plugins.module_utils._kms.guard\n"
              "    from ..module_utils import _kms\n"
              "    return importlib.import_module('ansible_collections.alfred.tee_kms.plugins.module_utils._kms.registry')\n")
    assert [line for line, dummy in kms_imports(source)] == [1, 3, 4, 5]
    assert not kms_imports("from ansible_collections.alfred.tee_kms.plugins.module_utils._common import errors\n"
                           "KMS = 'a _kms_like name'\n")


def test_common_has_files_to_check():
    assert "module_base.py" in {path.name for path in FILES}


@pytest.mark.parametrize("path", FILES, ids=lambda path: str(path.relative_to(COMMON)))
def test_no_common_file_imports_kms(path):
    assert not kms_imports(path.read_text(encoding="utf-8")), f"{path.name} imports _kms; KMS code belongs in _kms/ (module.py)"
