# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Base of the KMS modules: the module base of ``_common`` plus the provider options, and the
provider built once (wrapped in the environment guard for the modules that change a key).

Private module_utils: the API may change without notice between releases.

Only the modules that work on a key use it; the others run on ``TeeKmsModule`` and so never
import the registry, hence every provider and its libraries' checks.
"""

from __future__ import annotations

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.module_base import TeeKmsModule
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms import guard, registry


class KmsModule(TeeKmsModule):
    """``KmsModule(spec).run(handler)``: ``spec`` is the module's own options; the common and every
    provider's options (registry.argument_spec) are added, and ``self.provider`` is the selected one.

    ``env_guard=True`` (every module that changes a key): the options ``env`` and
    ``confirm_production`` are added and every change the provider makes is checked by the one
    guard of _kms/guard.py first."""

    def __init__(self, argument_spec: dict, requirements=(), env_guard: bool = False, **kwargs):
        spec = registry.argument_spec()
        if env_guard:
            spec.update(guard.ARGUMENT_SPEC)
        spec.update(argument_spec)
        super().__init__(spec, requirements, **kwargs)
        self._env_guard = env_guard
        self._provider = None

    @property
    def provider(self):
        if self._provider is None:
            self._provider = registry.build_provider(self.params)
            if self._env_guard:
                self._provider = guard.GuardedProvider(self._provider, self.params["env"], self.params["confirm_production"])
        return self._provider
