# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The user documentation points to nothing outside the repository: every relative link resolves
to a file in it, and no page sends readers to the design notes or the sibling shared/ folder
that only the developers have.

Run: .venv/bin/python -m pytest tests/docs/test_doc_references.py
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# docs/design-changes.md is the maintainers' record of changes to the design notes (the project's
# process writes them there): it names the notes by necessity and is not user documentation.
PAGES = sorted(p for p in [REPO / "README.md", *(REPO / "docs").rglob("*.md")] if p.name != "design-changes.md")
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_links_resolve_inside_the_repository(page):
    text = page.read_text(encoding="utf-8")
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+://", target) or target.startswith("#"):
            continue
        resolved = (page.parent / target.split("#")[0]).resolve()
        assert resolved.is_relative_to(REPO), f"{page.name}: link {target} leaves the repository"
        assert resolved.exists(), f"{page.name}: link {target} points to nothing"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_reference_to_the_design_notes_or_shared(page):
    text = page.read_text(encoding="utf-8")
    assert "DESIGN" not in text, f"{page.name} cites the design notes, which users do not have"
    if page.name != "README.md":  # the README's development section names where the test vectors live
        assert "../shared" not in text, f"{page.name} points into ../shared"
