# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the ansible-playbook arguments after the runbook wrapper's ``--`` would override.

Run by scripts/security/tee-kms-rotation.sh with the Python of the ansible-playbook it runs:
    python passthrough_vars.py NAME[,NAME...] ARG...
The arguments are parsed by ansible-core's own ansible-playbook parser and extra-vars loader, so
every spelling Ansible accepts is read as Ansible reads it: ``-e k=v``, ``-ek=v``, ``--extra-vars``
(and its abbreviations), JSON or YAML ``-e '{...}'``, ``-e @file`` (YAML or JSON, vault-encrypted
with the vault options given). Prints one line per finding, nothing when there is none:
    var NAME     an extra var among NAMEs (the variables the wrapper sets or validates)
    check        --check / -C (the wrapper's --dry-run is the rehearsal its banner announces)
    error TEXT   the arguments cannot be read (ansible-playbook would refuse them too)
Exit status 0, also for findings and errors (the wrapper refuses them); 2 on a usage error.
"""

from __future__ import annotations

import contextlib
import io
import sys


def findings(protected: set, args: list) -> list:
    from ansible import constants as C
    from ansible import context
    from ansible.cli import CLI
    from ansible.cli.playbook import PlaybookCLI
    from ansible.errors import AnsibleError
    from ansible.parsing.dataloader import DataLoader
    from ansible.utils.vars import load_extra_vars

    # As the wrapper runs it: the playbook first, the pass-through arguments after the wrapper's own options.
    cli = PlaybookCLI(["ansible-playbook", "rotate.yml", *args])
    usage = io.StringIO()
    try:
        with contextlib.redirect_stderr(usage), contextlib.redirect_stdout(usage):
            cli.parse()
    except SystemExit:
        # argparse's own words ("ansible-playbook: error: unrecognized arguments: ..."), --help or --version included.
        errors = [line.split("error:", 1)[1].strip() for line in usage.getvalue().splitlines() if "error:" in line]
        return [f"error {errors[-1] if errors else 'ansible-playbook would only print its help or version'}"]
    found = ["check"] if context.CLIARGS.get("check") else []
    loader = DataLoader()
    try:
        # As ansible-playbook sets up its vault secrets (CLI._play_prereqs), so an encrypted @file reads the same.
        secrets = CLI.setup_vault_secrets(loader, vault_ids=list(C.DEFAULT_VAULT_IDENTITY_LIST) + list(context.CLIARGS.get("vault_ids") or []),
                                          vault_password_files=list(context.CLIARGS.get("vault_password_files") or []),
                                          ask_vault_pass=context.CLIARGS.get("ask_vault_pass"), auto_prompt=False)
        loader.set_vault_secrets(secrets)
        names = {str(name) for name in load_extra_vars(loader)}
    except AnsibleError as exc:
        return found + [f"error {' '.join(str(getattr(exc, 'message', exc)).split())}"]
    return found + [f"var {name}" for name in sorted(names & protected)]


def main(argv: list) -> int:
    if not argv:
        print("usage: passthrough_vars.py NAME[,NAME...] ARG...", file=sys.stderr)
        return 2
    for line in findings(set(argv[0].split(",")), argv[1:]):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
