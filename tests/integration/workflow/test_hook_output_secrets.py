# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 22 item 10, in a real rotation: a validate hook that prints what a tired operator's
script prints (its header, its -u credentials, a secret from the environment as wrapped base64,
hex tokens after password= and Bearer). Secrets planted in the environment under names that
say secret in other ways (MYSQL_PWD, *_PASS). None reaches the bundle or the console; the
measurements and digests the evidence is about stay readable."""

from __future__ import annotations

import base64
import json
import secrets

from workflow_support import M_NEW, ROTATED, TARGET


def _b64_chunks(secret: str) -> set:
    chunks = set()
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + secret.encode()).decode()[4:-4]
        chunks |= {encoded[i:i + 16] for i in range(0, len(encoded) - 16, 4)}
    return chunks


def test_hook_output_secret_shapes_and_secret_env_names_reach_no_bundle(key, runner):
    mysql_pwd = "MyPwd-" + secrets.token_urlsafe(42)       # a secret of a *_PWD name, printed as base64 -w 64
    db_pass = secrets.token_hex(32)                          # 64 hex: digest-shaped, under a *_PASS name
    header, user_pw = f"Hd{secrets.token_hex(3)}", f"Up{secrets.token_hex(3)}"
    bearer, token = secrets.token_hex(32), secrets.token_hex(32)
    command = (f"echo \"calling the api with -H 'X-Token: {header}' -u ops:{user_pw}\"; echo \"X-Token: {header}\"; "
               f"echo \"curl: (22) 401 for ops:{user_pw}\"; printf 'app:%s' \"$MYSQL_PWD\" | base64 -w 64; "
               "echo \"password=$ROTATION_DB_PASS\"; echo \"Authorization: Bearer $HOOK_B\"; echo \"token=$HOOK_T\"")
    # HOOK_B, HOOK_T: names that do not say secret; only the keyword before the hex value does.
    result = runner.run(env={"ALFRED_ROTATION_VALIDATE_CMD": command, "MYSQL_PWD": mysql_pwd, "ROTATION_DB_PASS": db_pass,
                             "HOOK_B": bearer, "HOOK_T": token})
    assert result.rc == 0, result.output
    assert key.state() == ROTATED
    assert result.ran("Run the validate hook", "changed|ok")

    bundles = sorted(p for p in runner.evidence_dir.iterdir() if p.is_dir())
    assert len(bundles) == 1, bundles
    files = {p.name: p.read_text(encoding="utf-8") for p in bundles[0].iterdir() if p.is_file()}
    assert {"run.log", "events.jsonl", "summary.json", "report.html"} <= set(files)
    places = dict(files, console=result.stdout + result.stderr)
    chunks = _b64_chunks("app:" + mysql_pwd)
    for where, text in places.items():
        for secret in (mysql_pwd, db_pass, header, user_pw, bearer, token):
            assert secret not in text, f"a planted secret reached {where}"
        flat = text.replace("\\n", "").replace("\n", "").replace(" ", "")
        assert not [c for c in chunks if c in flat], f"the base64 of a planted secret reached {where}"
    # The hook did print them: masks stand in their place in its output tail.
    summary = json.loads(files["summary.json"])
    tail = "\n".join(next(h for h in summary["hooks"] if h["name"] == "validate")["stdout_tail"])
    assert "X-Token: [REDACTED:" in tail and "password=[REDACTED:" in tail, tail
    assert "Authorization: Bearer [REDACTED:bearer_token]" in tail and "token=[REDACTED:secret_assignment]" in tail, tail
    # What the evidence is about stays readable: measurements, the chain head.
    assert sorted(summary["allowed_measurements"]["after"]) == TARGET
    assert M_NEW[:12] in files["report.html"] and M_NEW in files["events.jsonl"]
    head = summary["chain_head"]["hash"]
    assert len(head) == 64 and json.loads(files["events.jsonl"].splitlines()[-1])["hash"] == head
