# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The _attestation package has no import cycle: the formats import only ``model`` and ``base``,
the registry imports the formats, the dispatch imports the registry.

Two checks: every module imports on its own in a fresh interpreter (a cycle shows there as an
ImportError of a half-initialised module, depending on which module comes first), and the graph
of every import statement, those inside functions included (AnsiballZ packs those too, and a
lazy import is how the old dispatch hid its cycle), has no cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import registry

PREFIX = "ansible_collections.alfred.tee_kms.plugins.module_utils"
MODULE_UTILS = Path(registry.__file__).resolve().parents[1]
ATTESTATION = sorted(p.stem for p in (MODULE_UTILS / "_attestation").glob("*.py") if p.stem != "__init__")


def _path(module: str) -> Path | None:
    """The file of a module_utils module (``_attestation.common``), or None for a package or a name."""
    path = MODULE_UTILS.joinpath(*module.split(".")).with_suffix(".py")
    return path if path.is_file() else None


def imports_of(module: str) -> set:
    """The module_utils modules ``module`` imports anywhere in its file."""
    tree = ast.parse(_path(module).read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX + "."):
            base = node.module[len(PREFIX) + 1:]
            for alias in node.names:
                # ``from pkg import mod`` imports the module pkg.mod; ``from mod import name`` imports mod.
                found.add(f"{base}.{alias.name}" if _path(f"{base}.{alias.name}") else base)
        elif isinstance(node, ast.Import):
            found.update(a.name[len(PREFIX) + 1:] for a in node.names if a.name.startswith(PREFIX + "."))
    return {name for name in found if _path(name)}


def import_graph(roots) -> dict:
    graph = {}
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module not in graph:
            graph[module] = imports_of(module)
            todo.extend(graph[module])
    return graph


def find_cycle(graph: dict) -> list:
    """One cycle of ``graph`` as a list of modules (first == last), or []."""
    state = {}
    stack = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == "open":
                return stack[stack.index(successor):] + [successor]
            if successor not in state:
                cycle = visit(successor)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return []

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return []


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_the_graph_sees_lazy_imports():
    # nitro.py imports its pinned root inside a function: that edge must be in the graph.
    assert "_attestation.nitro_root" in imports_of("_attestation.nitro")
    assert {"_attestation.alfred", "_attestation.nitro", "_attestation.jwt"} <= imports_of("_attestation.registry")


def test_no_import_cycle_from_any_attestation_module():
    graph = import_graph(f"_attestation.{name}" for name in ATTESTATION)
    assert set(f"_attestation.{name}" for name in ATTESTATION) <= set(graph)
    cycle = find_cycle(graph)
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_formats_import_neither_the_dispatch_nor_the_registry():
    for cls in registry.FORMAT_CLASSES:
        module = cls.__module__[len(PREFIX) + 1:]
        assert not imports_of(module) & {"_attestation.common", "_attestation.registry", "_attestation.trust"}, module


@pytest.mark.parametrize("name", ATTESTATION)
def test_each_module_imports_on_its_own(name):
    code = f"import importlib; importlib.import_module('{PREFIX}._attestation.{name}')"
    env = {"PYTHONPATH": ":".join(p for p in sys.path if p), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
