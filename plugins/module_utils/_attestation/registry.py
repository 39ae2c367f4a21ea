# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The attestation evidence formats, listed once: names, trust fields and the class of each.

Private module_utils: the API may change without notice between releases.

This is the only list of formats in the collection's Python code (as ``_kms/registry.py`` is for
the providers). Everything else reads it: the dispatch and format detection (``common.py``), the
trust fields and their checks (``trust.py``), the live client and the probes, the decrypt gate
(``_kms/rules.py``), and the choices of every module option that names a format. A new format is
its own file (a subclass of ``base.AttestationFormat``) plus an import line and an entry below.

The imports are explicit (not importlib by name): Ansible packs into a module's payload only the
module_utils it can see imported.
"""

from __future__ import annotations

import inspect

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import alfred
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import jwt
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import nitro
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.base import AttestationFormat
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.model import AttestationError

# One line per format, in the order of the choices and of detection.
FORMAT_CLASSES = (
    alfred.AlfredFormat,
    nitro.NitroFormat,
    jwt.JwtFormat,
)

# The trust fields every format shares, before and after the formats' own.
COMMON_BEFORE = ("formats",)
COMMON_AFTER = ("max_age",)


def check_format_class(cls) -> type:
    """Refuse (TypeError) a class that cannot be a format: not an AttestationFormat, abstract
    methods left unimplemented, no name, or an anchor it does not declare."""
    if not (inspect.isclass(cls) and issubclass(cls, AttestationFormat)):
        raise TypeError(f"{cls!r} is not an AttestationFormat subclass")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise TypeError(f"attestation format class {cls.__name__} does not implement the abstract method(s) {missing}")
    if not cls.name or not isinstance(cls.name, str):
        raise TypeError(f"attestation format class {cls.__name__} declares no name")
    if cls.anchor not in cls.anchor_options:
        raise TypeError(f"attestation format {cls.name} names the anchor {cls.anchor!r} among its anchor_options "
                        f"{', '.join(cls.anchor_options) or 'none'}")
    options = cls.trust_options()
    clash = set(options) & set(COMMON_BEFORE + COMMON_AFTER)
    if clash:
        raise TypeError(f"attestation format {cls.name} redeclares the common trust field(s) {', '.join(sorted(clash))}")
    stray = set(cls.flat_options) - set(options)
    if stray:
        raise TypeError(f"attestation format {cls.name} lists flat options it does not declare: {', '.join(sorted(stray))}")
    return cls


def index(classes) -> dict:
    """``{name: class}`` of ``classes``, each checked; TypeError when two share a name or a trust field."""
    found = {}
    owners = {}
    for cls in classes:
        check_format_class(cls)
        if cls.name in found:
            raise TypeError(f"two attestation format classes are named {cls.name}")
        for option in cls.trust_options():
            if option in owners:
                raise TypeError(f"attestation formats {owners[option]} and {cls.name} both declare the trust field {option}")
            owners[option] = cls.name
        found[cls.name] = cls
    return found


FORMATS = index(FORMAT_CLASSES)


def names() -> tuple:
    """The format names, in registry order: the choices of every option that names a format."""
    return tuple(FORMATS)


def attestation_format(name: str) -> type:
    """The class of format ``name``; AttestationError(``unknown_format``) for any other name."""
    if name not in FORMATS:
        raise AttestationError("unknown_format", f"format '{name}' is not one of {', '.join(names())}")
    return FORMATS[name]


def has_builtin_root(name: str) -> bool:
    """Whether format ``name`` verifies against a root pinned in the collection when the trust gives
    none (nitro: the AWS Nitro Enclaves root), so that it needs no trust anchor to attest."""
    return attestation_format(name).has_builtin_root


def formats_with_builtin_root() -> tuple:
    """The formats that have a pinned built-in root, in registry order."""
    return tuple(name for name, cls in FORMATS.items() if cls.has_builtin_root)


def trust_options() -> dict:
    """The argument spec of every format's trust fields: all anchors, then all claim checks, then all
    measurement fields, each group in registry order (the order of ``trust.FIELDS``)."""
    spec = {}
    for group in ("anchor_options", "check_options", "measurement_options"):
        for cls in FORMAT_CLASSES:
            spec.update({name: dict(value) for name, value in getattr(cls, group).items()})
    return spec


def flat_options() -> tuple:
    """The trust fields attestation_verify also accepts as flat (deprecated) options."""
    return tuple(name for name in trust_options() if any(name in cls.flat_options for cls in FORMAT_CLASSES))


def detect(document: bytes) -> str:
    """The name of the first format (registry order) that recognises the raw bytes."""
    for cls in FORMAT_CLASSES:
        if cls.sniff(document):
            return cls.name
    described = [cls.description for cls in FORMAT_CLASSES]
    listed = described[0] if len(described) == 1 else ", ".join(described[:-1]) + " nor " + described[-1]
    raise AttestationError("unknown_format", f"document is neither {listed}")
