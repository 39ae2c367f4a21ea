# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the workflow suites. The helpers live in workflow_support.py under a unique
module name: every suite's conftest is importable only as "conftest", so tests must not import it."""

from workflow_support import *  # noqa: F401,F403  (fixtures and helpers)
from workflow_support import _fleet_back_to_ok  # noqa: F401  (autouse fixture; not exported by *)
