# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Optional Python libraries and their version floors, each declared once.

Private module_utils: the API may change without notice between releases.

A ``Requirement`` is checked only where it is needed (a provider, a verifier); a missing
or too old library raises ``MissingLibraryError``, which the module base reports with
``missing_required_lib``.
"""

from __future__ import annotations

import importlib
import traceback

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import MissingLibraryError


def _distribution_version(name: str):
    """The installed distribution's version, for libraries without ``__version__``."""
    try:
        from importlib import metadata
    except ImportError:  # Python 3.7 targets
        return None
    try:
        return metadata.version(name)
    except (metadata.PackageNotFoundError, ValueError):  # not installed as a distribution
        return None


class Requirement:
    """``Requirement("boto3", (1, 28))``: the library must import and be at least that version."""

    def __init__(self, name: str, minimum: tuple = (), import_name: str | None = None):
        self.name = name
        self.minimum = tuple(minimum)
        self.import_name = import_name or name

    @property
    def spec(self) -> str:
        """``boto3>=1.28`` (or the bare name without a floor), as requirements files write it."""
        return f"{self.name}>={'.'.join(map(str, self.minimum))}" if self.minimum else self.name

    def problem(self):
        """None when usable, else ``(library, detail)`` for MissingLibraryError."""
        try:
            module = importlib.import_module(self.import_name)
        except ImportError:
            return self.name, traceback.format_exc()
        if not self.minimum:
            return None
        version = getattr(module, "__version__", None) or _distribution_version(self.name)
        if version is None:
            return None  # no version to compare (cbor2 has no __version__): the import is the check
        version = str(version)
        try:
            found = tuple(int(p) for p in version.split(".")[:len(self.minimum)])
        except ValueError:
            return None  # a development build: do not refuse what cannot be compared
        if found < self.minimum:
            return self.spec, f"{self.name} {version} is installed"
        return None

    def check(self, user: str) -> None:
        """Raise MissingLibraryError naming ``user`` (for example the KMS provider that needs it)."""
        problem = self.problem()
        if problem is not None:
            raise MissingLibraryError(problem[0], problem[1], user)


# The same floors are the ranges of meta/ee-requirements.txt (a unit test holds them together).
CRYPTOGRAPHY = Requirement("cryptography", (42, 0))
BOTO3 = Requirement("boto3", (1, 34))
CBOR2 = Requirement("cbor2", (5, 4))
REQUESTS = Requirement("requests", (2, 31))
HVAC = Requirement("hvac", (2, 1))
