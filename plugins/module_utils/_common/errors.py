# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Error types shared by every plugin of alfred.tee_kms.

Private module_utils: the API may change without notice between releases.

Every expected failure is raised as a TeeKmsError that names the action, the object and
the cause, so that modules can turn it into one clear fail_json message and never a
traceback. Messages must never contain key material, tokens or credentials.
"""

from __future__ import annotations


class TeeKmsError(Exception):
    """An expected failure: ``Could not <action> <object>: <cause>``."""

    # Stable, machine-readable category for callers that branch on the kind of failure.
    code = "error"

    def __init__(self, action: str, obj: str, cause: str):
        self.action = action
        self.obj = obj
        self.cause = cause
        super().__init__(f"Could not {action} {obj}: {cause}")

    def to_result(self) -> dict:
        return {"error": {"code": self.code, "action": self.action, "object": self.obj, "cause": self.cause}}


class InputError(TeeKmsError):
    code = "invalid_input"


class NotFoundError(TeeKmsError):
    code = "not_found"


class ConflictError(TeeKmsError):
    """The requested change contradicts the current state (disabled primary, ...)."""

    code = "conflict"


class LockHeldError(TeeKmsError):
    code = "lock_held"


class StoreError(TeeKmsError):
    """The key store cannot be read or written safely (corrupt, permissions, I/O)."""

    code = "store"


class AccessDeniedError(TeeKmsError):
    """The KMS refused an operation (for example decrypt without valid attestation)."""

    code = "access_denied"


class ProviderError(TeeKmsError):
    """A remote KMS answered with an error or could not be reached."""

    code = "provider"


class MissingLibraryError(TeeKmsError):
    """A required Python library is missing or too old; the module base reports it with
    ``missing_required_lib`` (attribute ``library``, the detail in ``exception``)."""

    code = "missing_library"

    def __init__(self, library: str, exception=None, user: str = "this module"):
        self.library = library
        self.exception = exception
        super().__init__("use", user, f"the Python library {library} is not installed")
