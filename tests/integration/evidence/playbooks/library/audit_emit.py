# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test-only module: returns an ``audit`` record and arbitrary output, like the rotation modules do."""

from __future__ import annotations

DOCUMENTATION = r"""
module: audit_emit
short_description: Test helper that emits an audit record
description: Returns O(audit) as the C(audit) key, O(output) as C(stdout) and O(data) as C(data).
options:
  audit: {description: Audit record., type: raw}
  output: {description: Text returned as stdout., type: str, default: ""}
  data: {description: Extra result data., type: raw}
  api_secret: {description: A no_log option., type: str, no_log: true}
  fail: {description: Fail with O(output) as message., type: bool, default: false}
author: [Alfred security engineering]
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec=dict(
            audit=dict(type="raw"), output=dict(type="str", default=""), data=dict(type="raw"),
            api_secret=dict(type="str", no_log=True), fail=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    result = dict(changed=False, stdout=p["output"], data=p["data"])
    if p["audit"] is not None:
        result["audit"] = p["audit"]
    if p["fail"]:
        module.fail_json(msg=p["output"] or "failed on request", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
