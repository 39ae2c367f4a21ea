# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The inventory AWX gives each job of a sliced job template (``job_slice_count`` > 1).

Written from the behaviour of AWX's ``Inventory.get_script_data`` (AWX 24), which builds the
JSON that a job's inventory script prints, and ``JobTemplate.get_effective_slice_ct``:

* the number of slices is ``min(job_slice_count, number of hosts)``;
* every enabled host of the inventory is a candidate, enclaves included: AWX knows nothing of
  groups when it slices. The hosts are sorted by name and slice ``n`` of ``N`` takes every
  ``N``-th one starting at the ``n``-th (``sorted_hosts[n-1::N]``), so each host lands in exactly
  one slice;
* a group keeps only its hosts of the slice; a group left with no hosts, no child groups and no
  variables is not written at all (its name stays among ``all``'s children), and a group with
  variables keeps them even when none of its hosts is in the slice;
* ``all.hosts`` holds the slice's hosts that are in no group, ``_meta.hostvars`` the variables of
  the slice's hosts only.

An inventory here is ``{"vars": {...}, "groups": {name: {"hosts": [...], "vars": {...},
"children": [...]}}, "hostvars": {host: {...}}}``; every host is a key of ``hostvars``.
"""

from __future__ import annotations


def slice_count(inventory: dict, job_slice_count: int) -> int:
    """How many jobs AWX starts: never more than there are hosts."""
    return max(1, min(job_slice_count, len(inventory["hostvars"])))


def script_data(inventory: dict, slice_number: int = 1, count: int = 1) -> dict:
    """The JSON of slice ``slice_number`` of ``count``, in the form of an inventory script's ``--list``."""
    if not 1 <= slice_number <= count:
        raise ValueError(f"slice {slice_number} of {count}: the slice number must be 1..{count}")
    hosts = sorted(inventory["hostvars"])
    if count > 1:
        hosts = hosts[slice_number - 1::count]
    in_slice = set(hosts)
    data: dict = {"all": {}}
    if inventory.get("vars"):
        data["all"]["vars"] = inventory["vars"]
    grouped = set()
    for name in sorted(inventory.get("groups", {})):
        group = inventory["groups"][name]
        info: dict = {}
        members = [host for host in group.get("hosts", []) if host in in_slice]
        grouped.update(members)
        if members:
            info["hosts"] = members
        if group.get("children"):
            info["children"] = list(group["children"])
        if group.get("vars"):
            info["vars"] = group["vars"]
        if info:
            data[name] = info
    data["all"]["hosts"] = [host for host in hosts if host not in grouped]
    if inventory.get("groups"):
        data["all"]["children"] = sorted(inventory["groups"])
    data["_meta"] = {"hostvars": {host: inventory["hostvars"][host] for host in hosts}}
    return data


def slices(inventory: dict, job_slice_count: int) -> list[dict]:
    """The inventory script data of every job of the sliced job, slice 1 first."""
    count = slice_count(inventory, job_slice_count)
    return [script_data(inventory, number, count) for number in range(1, count + 1)]
