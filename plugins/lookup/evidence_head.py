# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: evidence_head
short_description: Current head of the evidence hash chain
version_added: 0.1.0
description:
  - Returns C({bundle, seq, hash}) of the last line written to C(events.jsonl) of the evidence
    bundle of the current run (the one the C(alfred.tee_kms.evidence) callback of this C(ansible-playbook)
    process created), or of the bundle given as term.
  - Publish it with C(ansible.builtin.set_stats) as the last task so AWX keeps the chain head in
    the job artifacts. The published head commits to every event up to it (a verifiable prefix
    of the chain); M(alfred.tee_kms.evidence_verify) reports the same C(seq) and C(hash) for that line.
options:
  _terms:
    description:
      - Bundle directory. Default is the current run's bundle; without an evidence callback in this process,
        the bundle named by E(ALFRED_EVIDENCE_BUNDLE) unless O(current_run=true).
    required: false
  on_missing:
    description:
      - What to do when no bundle is active (the evidence callback is not enabled, or the run
        defines no C(env)).
      - C(warn) returns an empty dict and displays a warning, C(ignore) returns an empty dict,
        C(error) fails.
    type: str
    choices: [warn, ignore, error]
    default: warn
  current_run:
    description:
      - Accept only the bundle that the evidence callback of this very C(ansible-playbook) process created and
        records the run in. The callback tells it in the process's memory (the lookup runs in that process or in a
        worker forked from it), so no environment variable can fake it (E(ALFRED_EVIDENCE_BUNDLE) left by another
        run or set by hand is ignored).
      - Used by C(playbooks/rotate.yml) to refuse a live run that no bundle records.
    type: bool
    default: false
  report_cause:
    description:
      - When no bundle is active, return C({cause}) instead of an empty dict. The cause says why, that is
        the callback is not enabled for this run, or where and why it could not create the bundle.
      - Used by C(playbooks/rotate.yml) to name the cause when it refuses a live run that no bundle records.
    type: bool
    default: false
seealso:
  - plugin: alfred.tee_kms.evidence
    plugin_type: callback
"""

EXAMPLES = r"""
- name: Publish the evidence chain head in the AWX job artifacts
  ansible.builtin.set_stats:
    data:
      tee_kms_evidence: "{{ lookup('alfred.tee_kms.evidence_head') }}"
"""

RETURN = r"""
_raw:
  description: One dict.
  type: list
  elements: dict
  contains:
    bundle:
      description: Absolute path of the bundle.
      type: str
    seq:
      description: C(seq) of the last event written.
      type: int
    hash:
      description: C(hash) of that event (hex SHA-256).
      type: str
"""

import os

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.format import EvidenceError
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.verify import read_head
from ansible_collections.alfred.tee_kms.plugins.plugin_utils import _evidence_state as evidence_state

# Exported by the callback for other processes; read only when no callback ran in this one (and not current_run).
ENV_BUNDLE = "ALFRED_EVIDENCE_BUNDLE"
display = Display()


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        on_missing = self.get_option("on_missing")
        state = evidence_state.current()  # what this process's evidence callback says, if one ran
        if terms:
            bundle = str(terms[0])
        elif state or self.get_option("current_run"):
            bundle = state.get("bundle", "")
        else:
            bundle = os.environ.get(ENV_BUNDLE, "")
        if not bundle or not os.path.isdir(bundle):
            error = None if terms else state.get("error")
            cause = (f"bundle '{bundle}' does not exist" if bundle
                     else f"no evidence bundle is active ({error})" if error
                     else "no evidence bundle is active (is the alfred.tee_kms.evidence callback enabled and env set?)")
            if on_missing == "error":
                raise AnsibleLookupError(f"Could not read the evidence chain head: {cause}")
            if on_missing == "warn":
                display.warning(f"Could not read the evidence chain head: {cause}")
            if self.get_option("report_cause"):
                return [{"cause": evidence_state.why_missing(bundle, error)}]
            return [{}]
        try:
            head = read_head(bundle)
        except EvidenceError as exc:
            raise AnsibleLookupError(str(exc)) from None
        return [head]
