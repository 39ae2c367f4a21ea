# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Irreversible destruction is opt-in and delayed (kms_key, kms_key_version).
    DOCUMENTATION = r"""
options:
  allow_destroy:
    description:
      - Must be V(true) for a request that schedules destruction. Nothing is ever destroyed without it,
        and rotation and rollback never schedule destruction.
    type: bool
    default: false
  pending_window_days:
    description: Days between scheduling destruction and destruction (7 to 30).
    type: int
    default: 30
"""
