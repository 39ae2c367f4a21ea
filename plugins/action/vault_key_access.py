# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs the vault_key_access module in the Ansible worker when its target is the controller (see plugin_utils/_module_in_worker)."""

from __future__ import annotations

from ansible_collections.alfred.tee_kms.plugins.plugin_utils._module_in_worker import ActionModule  # noqa: F401 pylint: disable=unused-import
