# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""docs/evidence.md's table of audit kinds is the table of plugins/module_utils/_evidence/audit_kinds.py,
field by field, and tools/audit_kinds_doc.py rewrites a drifted page back to it.

The page is parsed here on its own (not with the tool's renderer), so a renderer that drops a
field cannot agree with itself.

Run: .venv/bin/python -m pytest tests/docs/test_audit_kinds_doc.py
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "evidence.md"
TOOL = REPO / "tools" / "audit_kinds_doc.py"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _load(TOOL, "audit_kinds_doc")
kinds = _load(REPO / "plugins" / "module_utils" / "_evidence" / "audit_kinds.py", "audit_kinds")


def _fields(cell: str) -> list:
    """``[(field, note or None)]`` of a fields cell: "`a`, `b` (note, with commas), `c`"."""
    parts, depth, current = [], 0, ""
    for char in cell:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    found = []
    for part in parts:
        match = re.fullmatch(r"`([a-z0-9_]+)`(?: \((.+)\))?", part)
        assert match, f"not a field: {part!r}"
        found.append((match.group(1), match.group(2)))
    return found


def doc_table(text: str) -> dict:
    """``{kind: [(field, note)]}`` of the rows between the page's markers."""
    start, end = text.index(tool.BEGIN), text.index(tool.END)
    rows = {}
    for line in text[start + len(tool.BEGIN):end].strip().splitlines()[2:]:  # after the header and |---|
        match = re.fullmatch(r"\| `([a-z0-9_]+)` \| (.+) \|", line)
        assert match, f"not a row of the audit kinds table: {line!r}"
        assert match.group(1) not in rows, f"kind {match.group(1)} listed twice"
        rows[match.group(1)] = _fields(match.group(2))
    return rows


def test_the_doc_table_is_the_kinds_table_field_by_field():
    documented = doc_table(DOC.read_text(encoding="utf-8"))
    assert list(documented) == list(kinds.KIND_FIELDS), "the documented kinds (in order) are not KIND_FIELDS'"
    for kind, fields in kinds.KIND_FIELDS.items():
        assert [f for f, dummy in documented[kind]] == list(fields), f"fields of {kind}: run tools/audit_kinds_doc.py --write"
        for field, note in documented[kind]:
            assert note == kinds.FIELD_NOTES.get((kind, field)), f"note of {kind}.{field}: run tools/audit_kinds_doc.py --write"


def test_every_note_belongs_to_a_declared_field():
    stray = [key for key in kinds.FIELD_NOTES if key[1] not in kinds.KIND_FIELDS.get(key[0], ())]
    assert not stray, f"FIELD_NOTES for fields KIND_FIELDS does not declare: {stray}"


def test_a_drifted_page_fails_the_check_and_is_rewritten(tmp_path):
    page = tmp_path / "evidence.md"
    text = DOC.read_text(encoding="utf-8")
    # A field dropped from the page, as when someone edits the table by hand.
    drifted = text.replace(", `new_findings` |", " |", 1)
    assert drifted != text
    page.write_text(drifted, encoding="utf-8")
    assert doc_table(drifted)["secret_scan"] != doc_table(text)["secret_scan"]
    check = [sys.executable, str(TOOL), "--doc", str(page), "--check"]
    assert subprocess.run(check, capture_output=True, check=False).returncode == 1
    subprocess.run([sys.executable, str(TOOL), "--doc", str(page), "--write"], capture_output=True, check=True)
    assert page.read_text(encoding="utf-8") == text  # only the block between the markers changed back
    assert subprocess.run(check, capture_output=True, check=False).returncode == 0


def test_a_new_kind_is_one_line_of_the_table():
    table = dict(kinds.KIND_FIELDS, key_state_audit=("key_id", "version", "state"))
    rendered = tool.replace_table(DOC.read_text(encoding="utf-8"), tool.render_table(table, kinds.FIELD_NOTES))
    assert doc_table(rendered)["key_state_audit"] == [("key_id", None), ("version", None), ("state", None)]
