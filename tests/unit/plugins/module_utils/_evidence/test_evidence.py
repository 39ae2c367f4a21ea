# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bundle format: canonical JSON, chain, manifest, signature roundtrip and the tamper matrix."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import audit as ev_audit
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import format as ev
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import verify as ev_verify
from ansible_collections.alfred.tee_kms.plugins.plugin_utils import _evidence_bundle as ev_bundle
from ansible_collections.alfred.tee_kms.plugins.plugin_utils import _evidence_audits as ev_audits


def make_bundle(root, events=12, key=None, end=True):
    bundle = os.path.join(str(root), "staging-all-20260216T101500Z")
    os.makedirs(bundle)
    chain = ev_bundle.ChainWriter(os.path.join(bundle, ev.EVENTS))
    chain.append("run_start", {"env": "staging", "action": "all"})
    for i in range(events - 2):
        chain.append("task_result", {"task": f"task {i}", "status": "ok", "duration_ms": i, "text": "žluťoučký kůň \u2603"})
    if end:
        chain.append("end", {"outcome": "success"})
    chain.close()
    with open(os.path.join(bundle, ev.RUN_LOG), "w") as handle:
        handle.write("[2026-02-16T10:15:00.000Z] INFO hello\n")
    ev_bundle.write_json(os.path.join(bundle, ev.SUMMARY), {
        "env": "staging", "action": "all", "outcome": "success",
        "chain_head": {"seq": chain.seq, "hash": chain.head},
    })
    ev_bundle.write_manifest(bundle)
    if key is not None:
        ev_bundle.sign_manifest(bundle, key)
    return bundle


@pytest.fixture
def key():
    return ed25519.Ed25519PrivateKey.generate()


def pub_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def lines(bundle):
    with open(os.path.join(bundle, ev.EVENTS), encoding="utf-8") as handle:
        return handle.read().splitlines(keepends=True)


def write_lines(bundle, content):
    with open(os.path.join(bundle, ev.EVENTS), "w", encoding="utf-8") as handle:
        handle.writelines(content)


def rehash(record):
    record["hash"] = ev.event_hash(record)
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------------- format
def test_canonical_json_is_the_contract_form():
    obj = {"b": 1, "a": ["é", {"z": None, "y": True}]}
    assert ev.canonical_json(obj) == json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert ev.canonical_json(obj) == '{"a":["é",{"y":true,"z":null}],"b":1}'.encode("utf-8")


def test_floats_are_refused_everywhere():
    with pytest.raises(ev.EvidenceError, match=r"\$\.a\[1\]\.d: floats are not allowed"):
        ev.canonical_json({"a": [1, {"d": 1.5}]})
    assert ev.to_plain({"x": 2.0, "y": 0.25}) == {"x": 2, "y": "0.25"}


def test_chain_lines_follow_the_contract(tmp_path):
    bundle = make_bundle(tmp_path, events=5)
    prev = "0" * 64
    for seq, line in enumerate(lines(bundle)):
        record = json.loads(line)
        assert record["seq"] == seq and record["prev"] == prev
        body = {k: v for k, v in record.items() if k != "hash"}
        expected = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")).hexdigest()
        assert record["hash"] == expected
        assert record["ts"].endswith("Z") and "T" in record["ts"]
        prev = record["hash"]


def test_roundtrip_unsigned_and_sha256sum(tmp_path):
    bundle = make_bundle(tmp_path)
    result = ev_verify.verify_bundle(bundle)
    assert result["verified"], result["reason"]
    assert result["events"] == 12
    assert result["chain_head"]["seq"] == 11
    assert result["files"] == ["events.jsonl", "run.log", "summary.json"]
    proc = subprocess.run(["sha256sum", "-c", ev.MANIFEST], cwd=bundle, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_roundtrip_signed_with_all_key_forms(tmp_path, key):
    bundle = make_bundle(tmp_path, key=key)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pem_path = tmp_path / "pub.pem"
    pem_path.write_text(pub_pem(key))
    for spec in (pub_pem(key), str(pem_path), base64.b64encode(raw).decode()):
        result = ev_verify.verify_bundle(bundle, spec)
        assert result["verified"] and result["signature_verified"], result["reason"]
    # the signature file is base64 of the 64 raw bytes over MANIFEST.sha256
    sig = base64.b64decode(open(os.path.join(bundle, ev.SIGNATURE)).read().strip())
    key.public_key().verify(sig, open(os.path.join(bundle, ev.MANIFEST), "rb").read())


def test_signature_verifies_with_openssl(tmp_path, key):
    bundle = make_bundle(tmp_path, key=key)
    (tmp_path / "pub.pem").write_text(pub_pem(key))
    (tmp_path / "sig.bin").write_bytes(base64.b64decode(open(os.path.join(bundle, ev.SIGNATURE)).read()))
    proc = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "pub.pem"), "-rawin",
         "-in", os.path.join(bundle, ev.MANIFEST), "-sigfile", str(tmp_path / "sig.bin")],
        capture_output=True, text=True, check=False)
    if "unknown option" in proc.stderr or "rawin" in proc.stderr and proc.returncode:
        pytest.skip("openssl without -rawin")
    assert proc.returncode == 0, proc.stderr


def test_read_head_matches_last_line(tmp_path):
    bundle = make_bundle(tmp_path, events=300)
    head = ev_verify.read_head(bundle)
    last = json.loads(lines(bundle)[-1])
    assert head == {"bundle": bundle, "seq": 299, "hash": last["hash"]}
    # a partially written last line is ignored: the head is the last complete line
    with open(os.path.join(bundle, ev.EVENTS), "a") as handle:
        handle.write('{"seq": 300, "partial')
    assert ev_verify.read_head(bundle)["seq"] == 299


def test_private_key_errors_are_clear(tmp_path):
    with pytest.raises(ev.EvidenceError, match=r"Could not read evidence signing key '.*nope.pem': No such file"):
        ev_bundle.load_private_key(str(tmp_path / "nope.pem"))
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(ev.EvidenceError, match="not a PEM private key"):
        ev_bundle.load_private_key(str(tmp_path / "bad.pem"))
    with pytest.raises(ev.EvidenceError, match="base64 decodes to 3 bytes"):
        ev_verify.load_public_key("AAAA")


def test_bundle_dir_name_and_collision(tmp_path):
    import datetime as dt
    when = dt.datetime(2026, 2, 16, 10, 15, 0, tzinfo=dt.timezone.utc)
    first = ev_bundle.create_bundle_dir(str(tmp_path), "production", "all", when)
    second = ev_bundle.create_bundle_dir(str(tmp_path), "production", "all", when)
    assert os.path.basename(first) == "production-all-20260216T101500Z"
    assert os.path.basename(second) == "production-all-20260216T101500Z.1"
    assert os.path.basename(ev_bundle.create_bundle_dir(str(tmp_path), "../../etc", "a b", when)).startswith("etc-a_b-")


# ---------------------------------------------------------------------------------- tamper matrix
def tamper_edit_field(bundle):
    content = lines(bundle)
    content[6] = content[6].replace('"status":"ok"', '"status":"changed"')
    write_lines(bundle, content)
    return r"^events\.jsonl line 7: hash does not match its content$"


def tamper_edit_and_rehash_line(bundle):
    content = lines(bundle)
    record = json.loads(content[4])
    record["task"] = "forged"
    content[4] = rehash(record)
    write_lines(bundle, content)
    return r"^events\.jsonl line 6: prev does not match the hash of line 5$"


def tamper_delete_line(bundle):
    content = lines(bundle)
    del content[3]
    write_lines(bundle, content)
    return r"^events\.jsonl line 4: seq is 4, expected 3"


def tamper_insert_line(bundle):
    content = lines(bundle)
    forged = json.loads(content[2])
    forged["task"] = "inserted"
    content.insert(3, rehash(forged))
    write_lines(bundle, content)
    return r"^events\.jsonl line 4: seq is 2, expected 3"


def tamper_reorder(bundle):
    content = lines(bundle)
    content[4], content[5] = content[5], content[4]
    write_lines(bundle, content)
    return r"^events\.jsonl line 5: seq is 5, expected 4"


def tamper_truncate_tail(bundle):
    write_lines(bundle, lines(bundle)[:-3])
    return r"^events\.jsonl line 9: chain ends at seq 8 but summary\.json records head seq 11"


def tamper_truncate_mid_line(bundle):
    path = os.path.join(bundle, ev.EVENTS)
    size = os.path.getsize(path)
    with open(path, "r+b") as handle:
        handle.truncate(size - 20)
    return r"^events\.jsonl line 12: incomplete last line"


def tamper_first_prev(bundle):
    content = lines(bundle)
    record = json.loads(content[0])
    record["prev"] = "1" * 64
    content[0] = rehash(record)
    write_lines(bundle, content)
    return r"^events\.jsonl line 1: prev is not 64 zeros$"


def tamper_edit_summary(bundle):
    path = os.path.join(bundle, ev.SUMMARY)
    data = json.load(open(path))
    data["outcome"] = "failed"
    ev_bundle.write_json(path, data)
    return r"^summary\.json: SHA-256 does not match MANIFEST\.sha256 line 3 \(file modified\)$"


def tamper_edit_run_log(bundle):
    with open(os.path.join(bundle, ev.RUN_LOG), "a") as handle:
        handle.write("[2026-02-16T10:15:01.000Z] INFO forged\n")
    return r"^run\.log: SHA-256 does not match MANIFEST\.sha256 line 2"


def tamper_remove_manifest_line(bundle):
    path = os.path.join(bundle, ev.MANIFEST)
    content = open(path).read().splitlines(keepends=True)
    open(path, "w").writelines([ln for ln in content if not ln.endswith(" run.log\n")])
    return r"^run\.log: not listed in MANIFEST\.sha256"


def tamper_extra_file(bundle):
    with open(os.path.join(bundle, "notes.txt"), "w") as handle:
        handle.write("added later\n")
    return r"^notes\.txt: not listed in MANIFEST\.sha256"


def tamper_delete_file(bundle):
    os.remove(os.path.join(bundle, ev.RUN_LOG))
    return r"^run\.log: listed in MANIFEST\.sha256 line 2 but missing"


def tamper_delete_manifest(bundle):
    os.remove(os.path.join(bundle, ev.MANIFEST))
    return r"^MANIFEST\.sha256: missing"


def tamper_rewrite_everything_consistently(bundle):
    """Forge a consistent bundle (chain, summary, manifest) - only the signature catches it."""
    content = lines(bundle)
    records = [json.loads(ln) for ln in content]
    records[3]["task"] = "forged"
    prev = "0" * 64
    out = []
    for record in records:
        record["prev"] = prev
        out.append(rehash(record))
        prev = record["hash"]
    write_lines(bundle, out)
    path = os.path.join(bundle, ev.SUMMARY)
    data = json.load(open(path))
    data["chain_head"]["hash"] = prev
    ev_bundle.write_json(path, data)
    ev_bundle.write_manifest(bundle)
    return r"^MANIFEST\.sig: signature does not verify MANIFEST\.sha256 with the given public key$"


def tamper_bad_signature(bundle):
    path = os.path.join(bundle, ev.SIGNATURE)
    sig = bytearray(base64.b64decode(open(path).read()))
    sig[0] ^= 1
    open(path, "w").write(base64.b64encode(bytes(sig)).decode() + "\n")
    return r"^MANIFEST\.sig: signature does not verify"


def tamper_missing_signature(bundle):
    os.remove(os.path.join(bundle, ev.SIGNATURE))
    return r"^MANIFEST\.sig: missing, but a public key was given"


TAMPERS = [
    tamper_edit_field, tamper_edit_and_rehash_line, tamper_delete_line, tamper_insert_line, tamper_reorder,
    tamper_truncate_tail, tamper_truncate_mid_line, tamper_first_prev, tamper_edit_summary, tamper_edit_run_log,
    tamper_remove_manifest_line, tamper_extra_file, tamper_delete_file, tamper_delete_manifest,
    tamper_rewrite_everything_consistently, tamper_bad_signature, tamper_missing_signature,
]


@pytest.mark.parametrize("tamper", TAMPERS, ids=[t.__name__[len("tamper_"):] for t in TAMPERS])
def test_tamper_is_detected_with_a_precise_reason(tmp_path, key, tamper):
    bundle = make_bundle(tmp_path, key=key)
    assert ev_verify.verify_bundle(bundle, pub_pem(key))["verified"]
    expected = tamper(bundle)
    result = ev_verify.verify_bundle(bundle, pub_pem(key))
    assert result["verified"] is False
    assert result["reason"] and __import__("re").search(expected, result["reason"]), result["reason"]


def test_unsigned_bundle_with_key_given_fails_but_verifies_without(tmp_path, key):
    bundle = make_bundle(tmp_path)
    assert ev_verify.verify_bundle(bundle)["verified"]
    result = ev_verify.verify_bundle(bundle, pub_pem(key))
    assert not result["verified"] and result["reason"].startswith("MANIFEST.sig: missing")


def test_wrong_key_fails(tmp_path, key):
    bundle = make_bundle(tmp_path, key=key)
    other = ed25519.Ed25519PrivateKey.generate()
    assert ev_verify.verify_bundle(bundle, pub_pem(other))["reason"].startswith("MANIFEST.sig: signature does not verify")


def test_unfinished_chain_without_end_is_reported(tmp_path):
    bundle = make_bundle(tmp_path, end=False)
    result = ev_verify.verify_bundle(bundle)
    assert result["reason"] == "events.jsonl line 11: last event is 'task_result', expected 'end' (chain truncated)"


def test_not_a_bundle(tmp_path):
    result = ev_verify.verify_bundle(str(tmp_path / "missing"))
    assert not result["verified"] and "not a directory" in result["reason"]


# ---------------------------------------------------------------------------------- audit protocol
def test_audits_are_collected_from_loops_and_hooks_are_digested():
    collector = ev_audits.AuditCollector(show_commands=False)
    result = {"results": [{"audit": {"kind": "hook", "name": "stage", "outcome": "ok", "rc": 0, "duration_ms": 12,
                                     "command": "deploy --token abc"}},
                          {"audit": {"kind": "key_state", "key_id": "k", "primary_version": 1, "versions": [],
                                     "allowed_measurements": ["a" * 96]}}],
              "audit": {"kind": "key_state", "key_id": "k", "primary_version": 2, "versions": [], "allowed_measurements": ["b" * 96]}}
    for audit in ev_audit.iter_audits(result):
        collector.add(audit, "t", "localhost")
    fields = collector.summary_fields()
    hook = fields["hooks"][0]
    digest = hashlib.sha256(b"deploy --token abc").hexdigest()
    assert hook["command"] == "sha256:" + digest and hook["command_sha256"] == digest
    assert fields["versions"]["primary_before"] == 2 and fields["versions"]["primary_after"] == 1
    assert "deploy" not in json.dumps(fields)


def test_show_commands_keeps_command_text():
    collector = ev_audits.AuditCollector(show_commands=True)
    collector.add({"kind": "hook", "name": "stage", "outcome": "ok", "command": "deploy now", "command_sha256": "x"})
    assert collector.hooks[0]["command"] == "deploy now"


@pytest.mark.parametrize("action,rollbacks,failed,expected", [
    ("all", [], False, "success"),
    ("all", [], True, "failed"),
    ("all", [{"executed": True, "outcome": "ok"}], True, "rolled_back"),
    ("all", [{"executed": True, "outcome": "failed"}], True, "failed"),
    ("rollback", [{"executed": True, "outcome": "ok"}], False, "success"),
    ("rollback", [{"executed": True, "outcome": "failed"}], True, "failed"),
    ("all", [{"executed": False, "outcome": "skipped"}], False, "success"),
])
def test_outcome_rules(action, rollbacks, failed, expected):
    collector = ev_audits.AuditCollector()
    for r in rollbacks:
        collector.add(dict(r, kind="rollback"))
    assert collector.outcome(action, failed) == expected


# ---------------------------------------------------------------------------------- issue 13 item 4: the verifier
def _refresh_manifest_and_summary(bundle):
    """What an attacker without the signing key can do: recompute everything that is not signed."""
    records = [json.loads(line) for line in lines(bundle)]
    summary = json.load(open(os.path.join(bundle, ev.SUMMARY)))
    summary["chain_head"] = {"seq": records[-1]["seq"], "hash": records[-1]["hash"]}
    ev_bundle.write_json(os.path.join(bundle, ev.SUMMARY), summary)
    ev_bundle.write_manifest(bundle)


def test_bundle_with_a_symlinked_directory_of_unsigned_files_is_accepted(tmp_path):
    bundle = make_bundle(tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "approval.txt").write_text("rotation approved by nobody\n")
    os.symlink(outside, os.path.join(bundle, "attachments"))
    result = ev_verify.verify_bundle(bundle)
    assert result["verified"] is False
    assert result["reason"] == "attachments: is a symbolic link (a bundle holds only regular files and directories)"


def test_symlinked_and_special_files_are_refused(tmp_path):
    bundle = make_bundle(tmp_path)
    real = tmp_path / "real-run.log"
    os.replace(os.path.join(bundle, ev.RUN_LOG), real)
    os.symlink(real, os.path.join(bundle, ev.RUN_LOG))
    assert ev_verify.verify_bundle(bundle)["reason"].startswith("run.log: is a symbolic link")
    other = make_bundle(tmp_path / "b")
    os.mkfifo(os.path.join(other, "pipe"))
    assert ev_verify.verify_bundle(other)["reason"] == "pipe: is not a regular file (a bundle holds only regular files and directories)"


def test_present_but_invalid_manifest_sig_reported_fine_without_a_key(tmp_path, key):
    bundle = make_bundle(tmp_path, key=key)
    with open(os.path.join(bundle, ev.SIGNATURE), "w") as handle:
        handle.write(base64.b64encode(b"\0" * 64).decode() + "\n")
    result = ev_verify.verify_bundle(bundle)
    assert result["verified"] is False and result["signed"] is True and result["signature_verified"] is None
    assert result["reason"].startswith("MANIFEST.sig: present but not checked")
    genuine = make_bundle(tmp_path / "genuine", key=key)
    assert ev_verify.verify_bundle(genuine)["verified"] is False  # unchecked is never "verified"
    assert ev_verify.verify_bundle(genuine, pub_pem(key))["verified"] is True


@pytest.mark.parametrize("rewrite, what", [
    (lambda line: line.replace('","', '", "', 1), "whitespace"),
    (lambda line: line.replace('{"', '{"status":"failed","', 1), "duplicate key"),
    (lambda line: json.dumps(json.loads(line), separators=(",", ":"), ensure_ascii=True) + "\n", "escaped unicode"),
    (lambda line: json.dumps(dict(reversed(list(json.loads(line).items()))), separators=(",", ":"), ensure_ascii=False) + "\n",
     "key order"),
], ids=["whitespace", "duplicate_key", "ascii_escapes", "key_order"])
def test_event_lines_whose_bytes_differ_from_their_canonical_form_are_accepted(tmp_path, rewrite, what):
    bundle = make_bundle(tmp_path)
    content = lines(bundle)
    content[3] = rewrite(content[3])
    assert json.loads(content[3])["hash"] == ev.event_hash(json.loads(content[3])) or what == "duplicate key"
    write_lines(bundle, content)
    _refresh_manifest_and_summary(bundle)
    result = ev_verify.verify_bundle(bundle)
    assert result["verified"] is False, what
    assert result["reason"] == "events.jsonl line 4: not in canonical form (sorted keys, no whitespace, no duplicate keys)"
