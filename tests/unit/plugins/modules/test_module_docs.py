# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Module docs match behaviour: diff support is claimed exactly by the modules that return a
diff, and every module runs on the shared base (one fail path)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

MODULES = Path(__file__).resolve().parents[4] / "plugins" / "modules"
NAMES = sorted(p.stem for p in MODULES.glob("*.py") if p.stem != "__init__")


def _doc(name):
    text = (MODULES / f"{name}.py").read_text(encoding="utf-8")
    start = text.index('DOCUMENTATION = r"""') + len('DOCUMENTATION = r"""')
    return text, yaml.safe_load(text[start:text.index('"""', start)])


@pytest.mark.parametrize("name", NAMES)
def test_diff_support_is_claimed_only_by_modules_that_return_a_diff(name):
    text, doc = _doc(name)
    fragments = doc.get("extends_documentation_fragment") or []
    own = (doc.get("attributes") or {}).get("diff_mode", {}).get("support")
    claims_diff = "alfred.tee_kms.attributes" in fragments or own in ("full", "partial")
    returns_diff = "add_diff(" in text or ".diff_mode" in text
    assert claims_diff == returns_diff, f"{name}: documents diff support {claims_diff}, returns a diff {returns_diff}"


@pytest.mark.parametrize("name", NAMES)
def test_every_module_runs_on_the_shared_base(name):
    text, dummy = _doc(name)
    # TeeKmsModule, or KmsModule (_kms/module.py) for the modules that work on a key.
    assert re.search(r"\b(TeeKms|Kms)Module\(", text) and "AnsibleModule(" not in text and "fail_json(" not in text, name
