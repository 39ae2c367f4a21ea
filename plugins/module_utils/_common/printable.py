# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Text from enclaves and KMS endpoints made safe to print on a terminal or in AWX.

Private module_utils: the API may change without notice between releases.

An enclave's answer (a measurement, a runtime name, an error text, a certificate name) or a KMS
error message can carry terminal control sequences: ESC (CSI colours, cursor moves that overwrite
earlier lines, OSC window titles and hyperlinks), C1 controls (U+009B is a one-character CSI),
carriage returns, bidirectional overrides. Printed raw they rewrite what an operator or auditor
sees. They are escaped, never dropped, so that the odd answer stays visible: ESC becomes the four
characters ``\\x1b``, U+202E becomes ``\\u202e``. Backslashes are left as they are.
"""

from __future__ import annotations

import re

# C0 controls but tab and line feed, DEL, C1 controls, the Unicode bidirectional controls (marks,
# embeddings, overrides, isolates), line and paragraph separators, and lone surrogates (which
# cannot be encoded for output at all).
_CONTROLS = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE = re.compile(f"[{_CONTROLS}]")
_UNSAFE_OR_LINES = re.compile(f"[{_CONTROLS}\t\n]")


def _escaped(match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str, lines: bool = True) -> str:
    """``text`` with every control character escaped; ``lines``: keep tab and line feed as they are."""
    return (_UNSAFE if lines else _UNSAFE_OR_LINES).sub(_escaped, text)


def escape_controls_in(value, lines: bool = True):
    """``value`` with every string in it (dict keys included) escaped by escape_controls."""
    if isinstance(value, str):
        return escape_controls(value, lines)
    if isinstance(value, dict):
        return {escape_controls_in(k, lines): escape_controls_in(v, lines) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_controls_in(item, lines) for item in value]
    if isinstance(value, tuple):
        return tuple(escape_controls_in(item, lines) for item in value)
    return value
