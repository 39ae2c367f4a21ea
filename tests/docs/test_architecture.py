# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""docs/architecture.md names only files that exist: every path it names (in backticks or as a link),
whether written from the repository root or as the file name within its package."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "architecture.md"
PATHLIKE = re.compile(r"^[\w./-]+\.(py|yml|yaml|md|hcl|jsonl|json|html)$|^[\w./-]+/$")
GENERATED = {"events.jsonl", "summary.json", "report.html"}  # files of an evidence bundle, not of the repository


def named_paths(text: str) -> set:
    names = {m for m in re.findall(r"`([^`\s]+)`", text) if PATHLIKE.match(m)}
    names |= {m for m in re.findall(r"\]\(([^)#\s]+)\)", text) if not m.startswith("http")}
    return names - GENERATED


def exists(name: str) -> bool:
    for base in (REPO, PAGE.parent):
        if (base / name).exists():
            return True
    # A bare file name (`local.py`) or a package-relative one (`tasks/main.yml`): somewhere in the collection.
    return any(p.as_posix().endswith("/" + name.rstrip("/")) for p in REPO.glob("**/" + name.rstrip("/").split("/")[-1])
               if ".cache" not in p.parts and ".collections" not in p.parts)


def test_every_file_the_architecture_page_names_exists():
    names = named_paths(PAGE.read_text(encoding="utf-8"))
    assert len(names) > 30, sorted(names)  # the pattern still finds the page's paths
    missing = sorted(name for name in names if not exists(name))
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"


def test_the_check_would_catch_a_renamed_file():
    assert not exists("plugins/module_utils/_kms/gcp.py") and not exists("no_such_step.yml")
    assert exists("plugins/callback/evidence.py") and exists("rotated.py") and exists("tasks/main.yml")
