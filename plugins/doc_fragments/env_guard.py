# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Every module that changes a key (kms_key, kms_key_version, measurement_allowlist,
    # rotation_lock, rotation_snapshot): one guard, module_utils/_kms/guard.py, whose
    # ARGUMENT_SPEC this mirrors.
    DOCUMENTATION = r"""
options:
  env:
    description:
      - The environment of the run. A key that belongs to another environment is refused as soon as it is
        read, before anything changes, in check mode too.
      - V(production) also needs O(confirm_production=true) for any change.
    type: str
    choices: [staging, production]
  confirm_production:
    description:
      - Must be V(true) for any change of a key that belongs to env V(production) (or with O(env=production)),
        whether or not O(env) is given. Check mode and a key already in the requested state are not refused.
      - C(playbooks/rotate.yml) passes its own C(confirm_production) (which a production rotation requires).
    type: bool
    default: false
"""

    # The read-only modules of the action group alfred.tee_kms.kms (kms_key_info, kms_probe): they take the guard's
    # confirmation without using it, so that the role's one set of module defaults for the group applies to them.
    READ_ONLY = r"""
options:
  confirm_production:
    description:
      - Not used by this module, which changes nothing; accepted so that one set of module defaults (the role
        C(alfred.tee_kms.rotation) sets the env guard's options for the action group C(alfred.tee_kms.kms)) applies to
        every module of the group.
    type: bool
    default: false
"""
