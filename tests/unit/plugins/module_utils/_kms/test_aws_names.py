# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 22: the alias names of provider=aws. A key owns exactly its version, lock, snapshot
and replay aliases; no key_id may land in another key's; lock generations have no digit cap.
The same rules against a real moto server: tests/aws/test_namespace_aws.py, test_lock_aws.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import InputError
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.aws import check_alias, own_aliases
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.aws_lock import generations
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.rules import replay_tokens

TOKEN = "n" + ("0123456789abcdef" * 2)[:31]


@pytest.mark.parametrize("key_id, owner, segment", [
    ("alias/pay/v2", "alias/pay", "v2"),
    ("alias/pay/V2", "alias/pay", "V2"),
    ("alias/pay/v0", "alias/pay", "v0"),
    ("alias/pay/v2/x", "alias/pay", "v2"),
    ("alias/pay/tee-kms-seen/x", "alias/pay", "tee-kms-seen"),
    ("alias/pay/tee-kms-lock/1", "alias/pay", "tee-kms-lock"),
    ("alias/pay/tee-kms-snapshot", "alias/pay", "tee-kms-snapshot"),
    ("alias/pay/Tee-Kms-Later", "alias/pay", "Tee-Kms-Later"),
    ("alias/pay/team/v7", "alias/pay/team", "v7"),
])
def test_key_id_in_another_keys_namespace_is_refused(key_id, owner, segment):
    with pytest.raises(InputError, match=f"Could not create key '{key_id}': with provider aws, its segment '{segment}' is reserved: "
                                         f"key '{owner}' owns the aliases {owner}/v<n>, {owner}/tee-kms-lock/<n>, "
                                         f"{owner}/tee-kms-snapshot and {owner}/tee-kms-seen/<token>"):
        check_alias(key_id, "create")


@pytest.mark.parametrize("key_id", ["alias/pay", "alias/v2", "alias/tee-kms-lock", "alias/pay/v2x", "alias/pay/vv2",
                                    "alias/pay/team", "alias/pay/kms-seen"])
def test_key_id_outside_any_reserved_namespace_is_accepted(key_id):
    assert check_alias(key_id, "create") == key_id


def test_own_aliases_are_exactly_the_keys_patterns():
    aliases = {f"alias/pay/{suffix}": "k" for suffix in (
        "v1", "v12345678", f"tee-kms-lock/{10 ** 30}", "tee-kms-snapshot", f"tee-kms-seen/{TOKEN}")}
    others = {f"alias/pay/{suffix}": "o" for suffix in (
        "v01", "v0", "team", "team/v1", "team/tee-kms-lock/1", "tee-kms-lock/0", "tee-kms-lock/07", "tee-kms-seen/x",
        f"tee-kms-seen/{TOKEN}/v1", f"tee-kms-seen/{TOKEN[:-1]}", "tee-kms-snapshot/v1", "V1")}
    assert own_aliases("alias/pay", {**aliases, **others, "alias/payroll/v1": "p"}) == aliases


def test_replay_tokens_have_the_form_the_alias_cache_uses():
    tokens = replay_tokens(SimpleNamespace(format="nitro", nonce="ab" * 40), b"document") + \
        replay_tokens(SimpleNamespace(format="alfred", nonce=None), b"document")
    assert all(f"alias/pay/tee-kms-seen/{t}" in own_aliases("alias/pay", {f"alias/pay/tee-kms-seen/{t}": "k"}) for t in tokens)


def test_lock_generations_have_no_digit_cap():
    gens = {f"alias/pay/tee-kms-lock/{g}": "k" for g in (9999999999, 10000000000, 10 ** 40)}
    gens["alias/pay/tee-kms-lock/0"] = gens["alias/pay/team/tee-kms-lock/5"] = "x"
    assert generations("alias/pay", gens) == {9999999999: "k", 10000000000: "k", 10 ** 40: "k"}
