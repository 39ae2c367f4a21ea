# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Base of every module of the collection: checks the libraries the module needs, masks URL
passwords, and turns expected failures into one clear ``fail_json`` message.

Private module_utils: the API may change without notice between releases.

Modules only describe their own options and call ``run(handler)``; the dependency, diff, warning
and error handling lines live here instead of being repeated in every module. It knows nothing
of KMS providers: the KMS modules run on ``_kms/module.py``'s ``KmsModule``, which adds the
provider options and builds the provider, so a module that uses no KMS imports no provider
(tests/unit/plugins/module_utils/_common/test_no_kms_imports.py keeps it so).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.parameters import remove_values

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import MissingLibraryError, TeeKmsError
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.printable import escape_controls_in


# The password of a URL's userinfo (scheme://user:password@host): enclave, health check and JWKS URLs
# may carry credentials (sent as Basic authentication), and a module's result repeats its arguments.
_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s:]*:([^/?#@\s]+)@")


def strings_in(value):
    """Every string in ``value`` and in the dicts, lists and tuples it holds."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings_in(item)


def hide_url_passwords(module: AnsibleModule) -> None:
    """Treat every URL password among the module's arguments as a no_log value: AnsibleModule then
    masks it wherever it appears in the result, the echoed arguments (``invocation``) included."""
    for text in strings_in(module.params):
        for match in _URL_PASSWORD.finditer(text):
            module.no_log_values.update({match.group(1), unquote(match.group(1))})


def make_module(argument_spec: dict, requirements=(), **kwargs) -> AnsibleModule:
    """An AnsibleModule for ``argument_spec`` (a KMS module's includes the provider options).

    ``requirements`` are the libraries the module itself always needs; a provider's and a
    verifier's are checked only when they are used.
    """
    kwargs.setdefault("supports_check_mode", True)
    module = AnsibleModule(argument_spec=dict(argument_spec), **kwargs)
    hide_url_passwords(module)
    for requirement in requirements:
        problem = requirement.problem()
        if problem is not None:
            module.fail_json(msg=missing_required_lib(problem[0]), exception=problem[1])
    return module


class TeeKmsModule:
    """``TeeKmsModule(spec).run(handler)``: handler(self) returns the result dict."""

    def __init__(self, argument_spec: dict, requirements=(), **kwargs):
        self.module = make_module(argument_spec, requirements, **kwargs)
        self.params = self.module.params
        self.check_mode = self.module.check_mode

    # --- results -----------------------------------------------------------------------
    @property
    def diff_mode(self) -> bool:
        """Whether the task runs with ``--diff`` (or ``diff: true``)."""
        return bool(self.module._diff)

    def add_diff(self, result: dict, before, after) -> dict:
        """Add ``diff`` to a result when diff mode is on; return the result."""
        if self.diff_mode:
            result["diff"] = {"before": before, "after": after}
        return result

    def printable(self, value):
        """``value`` as printed: no_log values masked first (escaping must not hide one from the mask),
        then every control character escaped. Results quote enclaves and KMS endpoints (reasons,
        measurements, error texts), and ansible-core prints a failure's msg and warnings raw, the
        rest as JSON that keeps C1 controls and DEL: a hostile answer could drive the terminal."""
        return escape_controls_in(remove_values(value, self.module.no_log_values))

    def warn(self, message: str) -> None:
        self.module.warn(self.printable(message))

    # --- failures ----------------------------------------------------------------------
    def fail(self, error: TeeKmsError, **extra):
        result = error.to_result()
        if getattr(error, "diff", None) is not None:  # a refused change shows what it would have changed
            result["diff"] = error.diff
        result.update(extra)
        if isinstance(error, MissingLibraryError) or getattr(error, "library", None):
            self.module.fail_json(msg=missing_required_lib(error.library), exception=getattr(error, "exception", None),
                                  **self.printable(result))
        self.module.fail_json(msg=self.printable(str(error)), **self.printable(result))

    def fail_message(self, message: str, **result):
        """Fail with a message that is not a TeeKmsError (a verification that found problems)."""
        self.module.fail_json(msg=self.printable(message), **self.printable(result))

    def run(self, handler):
        try:
            result = handler(self)
        except TeeKmsError as error:
            self.fail(error)
        self.module.exit_json(**self.printable(result))
