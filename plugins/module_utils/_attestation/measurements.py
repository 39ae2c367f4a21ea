# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Validation and normalisation of enclave measurements.

Private module_utils: the API may change without notice between releases.

A measurement is the identity of an enclave image: a Nitro PCR or TDX/SEV-SNP launch
measurement (sha384, 96 hex chars), an SGX MRENCLAVE or image digest (sha256, 64 hex
chars), or an opaque printable token. Every value is checked before anything changes, so a
typo can never reach a key's policy.
"""

from __future__ import annotations

import re

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import InputError

FORMATS = ("sha384", "sha256", "opaque")
_HEX_LENGTH = {"sha384": 96, "sha256": 64}
_HEX = re.compile(r"^[0-9a-fA-F]+$")
# Opaque: printable ASCII without spaces or commas (commas separate the runbook's list).
_OPAQUE = re.compile(r"^[\x21-\x2b\x2d-\x7e]{1,256}$")
# Values that identify development or debug images; never allowed outside development.
_DEV_MARKER = re.compile(r"(^|[-_.:/])(dev|debug|test|local|insecure|sample|example)([-_.:/]|$)", re.IGNORECASE)


def is_dev_marker(value: str) -> bool:
    return bool(_DEV_MARKER.search(value))


def normalize(value, measurement_format: str = "sha384", allow_dev: bool = False, action: str = "validate") -> str:
    """Return the canonical form of one measurement or raise InputError."""
    if measurement_format not in FORMATS:
        raise InputError(action, f"measurement format '{measurement_format}'", f"must be one of {', '.join(FORMATS)}")
    if not isinstance(value, str):
        raise InputError(action, "measurement", f"expected a string, got {type(value).__name__}")
    raw = value.strip()
    shown = _shorten(raw)
    if measurement_format in _HEX_LENGTH:
        expected = _HEX_LENGTH[measurement_format]
        if raw.lower().startswith("0x"):
            raw = raw[2:]
        if not _HEX.match(raw or "-"):
            if is_dev_marker(raw) and not allow_dev:
                raise InputError(action, f"measurement '{shown}'", "development/debug enclave markers are refused")
            raise InputError(action, f"measurement '{shown}'", f"not hexadecimal ({measurement_format} needs {expected} hex characters)")
        if len(raw) != expected:
            raise InputError(action, f"measurement '{shown}'", f"has {len(raw)} hex characters, {measurement_format} needs {expected}")
        if set(raw) == {"0"}:
            raise InputError(action, f"measurement '{shown}'", "all-zero measurements belong to debug enclaves and are always refused")
        return raw.lower()
    if not _OPAQUE.match(raw):
        raise InputError(action, f"measurement '{shown}'",
                         "opaque measurements are 1-256 printable characters without spaces or commas")
    if set(raw) <= {"0"}:
        raise InputError(action, f"measurement '{shown}'", "all-zero measurements belong to debug enclaves and are always refused")
    if is_dev_marker(raw) and not allow_dev:
        raise InputError(action, f"measurement '{shown}'", "development/debug enclave markers are refused")
    return raw


def normalize_list(values, measurement_format: str = "sha384", allow_dev: bool = False, action: str = "validate") -> list:
    """Normalise a list (or the runbook's comma-separated string); keep order, drop duplicates."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [v for v in values.split(",") if v.strip()]
    result = []
    for value in values:
        canonical = normalize(value, measurement_format, allow_dev, action)
        if canonical not in result:
            result.append(canonical)
    return result


# A label names an image for people (``api-v42``); it never grants anything. Any printable text
# without the separators of the runbook's list ("," between entries, "=" between label and value).
_LABEL = re.compile(r"^[^\x00-\x1f\x7f,=]{1,64}$")


def check_label(name, action: str) -> str:
    text = str(name).strip() if isinstance(name, str) else ""
    if not _LABEL.match(text):
        raise InputError(action, f"measurement label {_shorten(str(name))!r}",
                         "labels are 1-64 printable characters without ',' or '='")
    return text


def split_labelled(values, measurement_format: str = "sha384") -> tuple:
    """Split ``name=measurement`` entries of an allow-list input (list or comma-separated string).

    Returns ``(entries, labelled)``: the entries as given with the ``name=`` prefixes removed, and
    ``[(name, measurement as given)]``. Only hex formats take labels inline: an opaque measurement
    may itself contain "=" (label opaque values with kms_measurement_labels instead).
    """
    if values is None:
        return [], []
    if isinstance(values, str):
        values = [v for v in values.split(",") if v.strip()]
    if measurement_format not in _HEX_LENGTH:
        return list(values), []
    entries, labelled = [], []
    for value in values:
        if isinstance(value, str) and "=" in value:
            name, dummy, measurement = value.partition("=")
            entries.append(measurement)
            labelled.append((name.strip(), measurement))
        else:
            entries.append(value)
    return entries, labelled


def labels_by_measurement(named, measurement_format: str = "sha384", action: str = "validate") -> dict:
    """``[(name, measurement)]`` or ``{name: measurement}`` -> ``{canonical measurement: name}``.

    Refuses a bad name, a measurement that is not valid in the format (named in the message by
    its label), and one measurement under two names or one name for two measurements.
    """
    pairs = list(named.items()) if isinstance(named, dict) else list(named or [])
    labels, names = {}, {}
    for name, measurement in pairs:
        name = check_label(name, action)
        try:
            canonical = normalize(measurement, measurement_format, allow_dev=True, action=action)
        except InputError as exc:
            raise InputError(action, f"measurement labelled '{name}'", exc.cause) from None
        if labels.get(canonical, name) != name:
            raise InputError(action, f"measurement {_shorten(canonical)}", f"it is labelled both '{labels[canonical]}' and '{name}'")
        if names.get(name, canonical) != canonical:
            raise InputError(action, f"measurement label '{name}'", f"it names both {_shorten(names[name])} and {_shorten(canonical)}")
        labels[canonical], names[name] = name, canonical
    return labels


def describe(measurement: str, labels: dict | None = None) -> str:
    """A measurement for a message: shortened, with its label when it has one."""
    label = (labels or {}).get(measurement)
    return f"{_shorten(measurement)} ({label})" if label else _shorten(measurement)


def _shorten(value: str) -> str:
    return value if len(value) <= 24 else f"{value[:12]}...{value[-8:]}"
