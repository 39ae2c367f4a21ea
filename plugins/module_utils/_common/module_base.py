# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Base for the KMS modules: merges the provider options, builds the provider once and
turns expected failures into one clear ``fail_json`` message.

Private module_utils: the API may change without notice between releases.

Modules only describe their own options and call ``run(handler)``; the connect and error
handling lines live here instead of being repeated in every module.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.alfred.tee_kms.plugins.module_utils._common import deps
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import TeeKmsError
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms import registry


def make_module(argument_spec: dict, with_provider: bool = True, **kwargs) -> AnsibleModule:
    spec = registry.argument_spec() if with_provider else {}
    spec.update(argument_spec)
    kwargs.setdefault("supports_check_mode", True)
    module = AnsibleModule(argument_spec=spec, **kwargs)
    problem = deps.CRYPTOGRAPHY.problem()
    if problem is not None:
        module.fail_json(msg=missing_required_lib(deps.CRYPTOGRAPHY.spec), exception=problem[1])
    return module


class TeeKmsModule:
    """``TeeKmsModule(spec).run(handler)``: handler(self) returns the result dict."""

    def __init__(self, argument_spec: dict, with_provider: bool = True, **kwargs):
        self.module = make_module(argument_spec, with_provider, **kwargs)
        self.params = self.module.params
        self.check_mode = self.module.check_mode
        self._provider = None

    @property
    def provider(self):
        if self._provider is None:
            self._provider = registry.build_provider(self.params)
        return self._provider

    def fail(self, error: TeeKmsError, **extra):
        result = error.to_result()
        result.update(extra)
        if getattr(error, "library", None):  # an optional dependency (boto3) is missing
            self.module.fail_json(msg=missing_required_lib(error.library), exception=getattr(error, "exception", None), **result)
        self.module.fail_json(msg=str(error), **result)

    def run(self, handler):
        try:
            result = handler(self)
        except TeeKmsError as error:
            self.fail(error)
        self.module.exit_json(**result)
