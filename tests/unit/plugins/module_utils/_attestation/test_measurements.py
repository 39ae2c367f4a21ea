# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Measurement validation: formats, normalisation, debug and dev refusals."""

from __future__ import annotations

import pytest
from kms_testlib import M1, M2

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.measurements import is_dev_marker, normalize, normalize_list
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import InputError

SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@pytest.mark.parametrize("value, fmt, expected", [
    (M1, "sha384", M1),
    (M1.upper(), "sha384", M1),
    ("0x" + M1, "sha384", M1),
    ("  " + M1 + "\n", "sha384", M1),
    (SHA256.upper(), "sha256", SHA256),
    ("sha256:abc/image@v1.2", "opaque", "sha256:abc/image@v1.2"),
    ("MrEnclave_42", "opaque", "MrEnclave_42"),
])
def test_valid_values_are_normalised(value, fmt, expected):
    assert normalize(value, fmt) == expected


def _short(value):
    return value if len(value) <= 24 else f"{value[:12]}...{value[-8:]}"


@pytest.mark.parametrize("value, fmt, cause", [
    (M1[:-2], "sha384", "has 94 hex characters, sha384 needs 96"),
    (M1 + "ab", "sha384", "has 98 hex characters, sha384 needs 96"),
    (SHA256, "sha384", "has 64 hex characters, sha384 needs 96"),
    (M1, "sha256", "has 96 hex characters, sha256 needs 64"),
    ("g" + M1[1:], "sha384", "not hexadecimal (sha384 needs 96 hex characters)"),
    ("", "sha384", "not hexadecimal (sha384 needs 96 hex characters)"),
    ("0" * 96, "sha384", "all-zero measurements belong to debug enclaves and are always refused"),
    ("0x" + "0" * 64, "sha256", "all-zero measurements belong to debug enclaves and are always refused"),
    ("0000", "opaque", "all-zero measurements belong to debug enclaves and are always refused"),
    ("dev-local-enclave", "sha384", "development/debug enclave markers are refused"),
    ("dev-local-enclave", "opaque", "development/debug enclave markers are refused"),
    ("image_debug", "opaque", "development/debug enclave markers are refused"),
    ("two words", "opaque", "opaque measurements are 1-256 printable characters without spaces or commas"),
    ("a,b", "opaque", "opaque measurements are 1-256 printable characters without spaces or commas"),
    ("x" * 257, "opaque", "opaque measurements are 1-256 printable characters without spaces or commas"),
    ("caf\u00e9", "opaque", "opaque measurements are 1-256 printable characters without spaces or commas"),
])
def test_malformed_values_are_refused_with_a_clear_message(value, fmt, cause):
    with pytest.raises(InputError) as info:
        normalize(value, fmt, action="create")
    assert str(info.value) == f"Could not create measurement '{_short(value.strip())}': {cause}"
    assert info.value.code == "invalid_input"


def test_dev_markers_pass_only_with_allow_dev():
    assert normalize("dev-local-enclave", "opaque", allow_dev=True) == "dev-local-enclave"
    with pytest.raises(InputError):
        normalize("0000", "opaque", allow_dev=True)  # all-zero stays refused
    assert is_dev_marker("dev-local-enclave") and is_dev_marker("prod:debug") and is_dev_marker("TEST")
    assert not is_dev_marker("devops-image") and not is_dev_marker(M1) and not is_dev_marker("latest")


def test_unknown_format_and_non_string():
    with pytest.raises(InputError) as info:
        normalize(M1, "md5")
    assert str(info.value) == "Could not validate measurement format 'md5': must be one of sha384, sha256, opaque"
    with pytest.raises(InputError) as info:
        normalize(12, "sha384")
    assert str(info.value) == "Could not validate measurement: expected a string, got int"


def test_normalize_list_keeps_order_drops_duplicates_and_accepts_the_runbook_string():
    assert normalize_list([M2, M1.upper(), M2, "0x" + M1]) == [M2, M1]
    assert normalize_list(f"{M1}, {M2},,") == [M1, M2]
    assert normalize_list(None) == [] and normalize_list([]) == []
    with pytest.raises(InputError, match="has 3 hex characters"):
        normalize_list([M1, "abc"])


# --- labels ------------------------------------------------------------------------------------

def test_labelled_entries_are_split_from_their_measurements():
    from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.measurements import labels_by_measurement, split_labelled

    entries, labelled = split_labelled(f"api-v42={M1.upper()}, {M2}", "sha384")
    assert normalize_list(entries) == [M1, M2]
    assert labels_by_measurement(labelled) == {M1: "api-v42"}
    # Opaque values may contain "=" themselves: never split, label them with the mapping instead.
    assert split_labelled(["tok=en=="], "opaque") == (["tok=en=="], [])


@pytest.mark.parametrize("pairs, cause", [
    ([("api-v42", M1), ("api-v43", M1.upper())], f"measurement {M1[:12]}...{M1[-8:]}: it is labelled both 'api-v42' and 'api-v43'"),
    ([("api", M1), ("api", M2)], f"measurement label 'api': it names both {M1[:12]}...{M1[-8:]} and {M2[:12]}...{M2[-8:]}"),
    ([("api-v42", M1[:-1])], "measurement labelled 'api-v42': has 95 hex characters, sha384 needs 96"),
    ([("", M1)], "measurement label '': labels are 1-64 printable characters without ',' or '='"),
    ([("line\nbreak", M1)], "measurement label 'line\\nbreak': labels are 1-64 printable characters without ',' or '='"),
    ([("x" * 65, M1)], "labels are 1-64 printable characters"),
])
def test_bad_labels_are_refused_naming_the_label(pairs, cause):
    from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.measurements import labels_by_measurement

    with pytest.raises(InputError) as caught:
        labels_by_measurement(pairs, action="validate labels with")
    assert cause in str(caught.value)


def test_labels_from_the_mapping_and_inline_entries_are_merged_or_refused():
    from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.inputs import merge_labels

    assert merge_labels({M1: "api-v42"}, {"api-v42": M1, "probe": M2}, "sha384") == {M1: "api-v42", M2: "probe"}
    with pytest.raises(InputError, match="labelled both 'api-v42' and 'old'"):
        merge_labels({M1: "api-v42"}, {"old": M1}, "sha384")
    with pytest.raises(InputError, match="input kms_measurement_labels: expected a mapping of names to measurements, got list"):
        merge_labels({}, [M1], "sha384")
