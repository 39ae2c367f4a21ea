# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A new attestation format is one file plus one registry line.

The test copies the collection's code to a temporary ``ansible_collections`` tree, writes a tiny
format (``toy.py``: a JSON report after a ``TOY1`` magic, HMAC-SHA384 under a trusted key, bound to
the nonce) and adds its import line and its entry to ``registry.py`` and changes nothing else.
A fresh interpreter on that copy then checks that the format is accepted everywhere a format is:
the dispatch and detection, the result rows, the live client (a loopback enclave serving it), the
trust fields and their checks, the decrypt gate, the modules' argument specs, and the pinned-root
question. What stays to do by hand is static text: the docs (test_format_choices_docs.py names them).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import registry

COLLECTION = Path(registry.__file__).resolve().parents[3]
REGISTRY = Path("plugins/module_utils/_attestation/registry.py")
PREFIX = "ansible_collections.alfred.tee_kms.plugins.module_utils._attestation"

TOY_FORMAT = '''\
"""A toy attestation format (tests only): ``TOY1`` + a JSON report + ``.`` + hex HMAC-SHA384 of the report."""

from __future__ import annotations

import datetime
import hashlib
import hmac

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.base import AttestationFormat, trust_error
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.model import AttestationError, Evidence, loads_json

MAGIC = b"TOY1"


class ToyFormat(AttestationFormat):
    name = "toy"
    description = "a TOY1 report (toy)"
    anchor = "toy_keys"
    anchor_options = {"toy_keys": dict(type="list", elements="str", no_log=True)}
    measurement_options = {"toy_measurement_field": dict(type="str")}

    @classmethod
    def sniff(cls, document):
        return document.startswith(MAGIC)

    @classmethod
    def check_trust(cls, trust, context):
        for key in trust.get("toy_keys") or []:
            if len(key) != 64 or key.strip("0123456789abcdef"):
                raise trust_error(context, "toy_keys entries must be 64 lowercase hex characters")
        return trust

    @classmethod
    def verify(cls, document, options):
        report, dot, mac = document[len(MAGIC):].rpartition(b".")
        if not dot:
            raise AttestationError("malformed", "toy report has no MAC")
        keys = options.trust.get("toy_keys") or []
        if not keys:
            raise AttestationError("trust", "no toy key configured (toy_keys)")
        if not any(hmac.compare_digest(hmac.new(bytes.fromhex(k), report, hashlib.sha384).hexdigest().encode(), mac) for k in keys):
            raise AttestationError("signature", "toy MAC does not verify under any trusted key")
        doc = loads_json(report, "toy report")
        if options.nonce is not None and doc.get("nonce") != options.nonce:
            raise AttestationError("nonce_mismatch", "toy report nonce differs from the expected nonce")
        issued = datetime.datetime.fromtimestamp(doc["issued_at"], datetime.timezone.utc)
        if options.max_age is not None and (options.now - issued).total_seconds() > options.max_age:
            raise AttestationError("stale", "toy report is too old")
        field = options.trust.get("toy_measurement_field") or "measurement"
        return Evidence(format="toy", measurement=doc[field], issued_at=issued, nonce=doc.get("nonce"))
'''

# Runs on the copy: every check raises AssertionError (non-zero exit) or prints the names it saw.
CHECKS = '''\
import base64, hashlib, hmac, json, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import client, common, registry, trust, toy
from ansible_collections.alfred.tee_kms.plugins.module_utils._common import module_base
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import AccessDeniedError, InputError
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms import rules
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow import probes
from ansible_collections.alfred.tee_kms.plugins.modules import attestation_verify, kms_key, kms_probe

assert toy.__file__.startswith(COPY), toy.__file__  # the copy, not the checkout
KEY = "ab" * 32
M = "5a" * 48

def report(nonce=None, key=KEY, measurement=M):
    body = json.dumps({"measurement": measurement, "nonce": nonce, "issued_at": int(time.time())}).encode()
    return b"TOY1" + body + b"." + hmac.new(bytes.fromhex(key), body, hashlib.sha384).hexdigest().encode()

seen = {"names": list(registry.names()), "formats": list(common.FORMATS), "builtin_root": registry.has_builtin_root("toy"),
        "with_builtin_root": list(registry.formats_with_builtin_root())}

# Dispatch and detection.
assert common.detect_format(report()) == "toy"
task_trust = trust.validate({"formats": ["toy"], "toy_keys": [KEY]}, trust.TASK)
options = trust.verify_options(task_trust)
row = common.result_row("document", report(), None, options, [M])
assert row["verified"] and row["format"] == "toy" and row["measurement"] == M, row
bad = common.result_row("document", report(key="cd" * 32), "toy", options, [M])
assert not bad["verified"] and bad["check"] == "signature", bad
try:
    common.detect_format(b"%PDF")
except common.AttestationError as exc:
    seen["unknown"] = str(exc)

# attestation_verify's engine, with a document given base64 as a task would.
result, failure = client.run({"format": "toy", "document": base64.b64encode(report()).decode(), "trust": {"formats": ["toy"], "toy_keys": [KEY]},
                              "allowed_measurements": [M]})
assert failure is None and result["measurements"] == [M], (result, failure)

# The live client and the probes: a loopback enclave serving toy documents for the nonce it is asked.
class Enclave(BaseHTTPRequestHandler):
    def do_GET(self):
        query = parse_qs(urlsplit(self.path).query)
        assert query["format"] == ["toy"], query
        body = report(query["nonce"][0])
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Enclave)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}"
rows = client.attest_endpoints([url], "toy", options, [M])
assert rows[0]["verified"] and rows[0]["measurement"] == M, rows

# The decrypt gate every provider applies, from a key's trust (formats derived from its anchor).
key_trust = trust.normalize_trust({"toy_keys": [KEY]})
assert trust.accepted_formats(key_trust) == ["toy"]
attestation = probes.evidence_from(url, "toy", 5, rules.decrypt_purpose("tokens/one"))
assert attestation["format"] == "toy" and attestation["nonce"], attestation
remembered = []
raw, fmt = rules.require_attestation(key_trust, attestation, [M], "a ciphertext", "tokens/one", lambda *a: remembered.append(a))
assert fmt == "toy" and remembered
try:
    rules.require_attestation(key_trust, {"document": report(rules.purpose_nonce("other"))}, [M], "a ciphertext", "tokens/one", lambda *a: None)
    raise AssertionError("evidence for another purpose was accepted")
except AccessDeniedError as exc:
    seen["wrong_purpose"] = exc.cause
server.shutdown()

# Trust fields: spec, choices, the anchor rule and the format's own check.
spec = trust.argument_spec()
assert "toy" in spec["formats"]["choices"] and spec["toy_keys"]["no_log"] is True
assert "toy_keys" in trust.FIELDS and "toy_keys" in trust.NOT_FLAT
for given, context in (({"formats": ["toy"]}, trust.KEY), ({"toy_keys": ["zz"]}, trust.KEY), ({"toy_keys": ["zz"]}, trust.TASK)):
    try:
        trust.validate(given, context)
        raise AssertionError(f"accepted {given}")
    except InputError as exc:
        seen.setdefault("refused", []).append(str(exc))

# The modules' argument specs.
class Captured(Exception):
    pass

def spec_of(module):
    def capture(argument_spec, **kwargs):
        raise Captured(argument_spec)
    module_base.AnsibleModule = capture
    try:
        module.main()
    except Captured as exc:
        return exc.args[0]
    raise AssertionError("no argument spec")

seen["attestation_verify.format"] = spec_of(attestation_verify)["format"]["choices"]
seen["attestation_verify.trust.formats"] = spec_of(attestation_verify)["trust"]["options"]["formats"]["choices"]
assert "toy_keys" in spec_of(attestation_verify)["trust"]["options"]
assert "toy_keys" not in spec_of(attestation_verify)  # a new format's fields are not flat options
seen["kms_probe.attestation_format"] = spec_of(kms_probe)["attestation_format"]["choices"]
seen["kms_key.attestation_trust.formats"] = spec_of(kms_key)["attestation_trust"]["options"]["formats"]["choices"]
print(json.dumps(seen))
'''


def _copy_with_toy_format(tmp_path: Path) -> Path:
    root = tmp_path / "ansible_collections" / "alfred" / "tee_kms"
    for part in ("plugins", "meta"):
        shutil.copytree(COLLECTION / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "plugins/module_utils/_attestation/toy.py").write_text(TOY_FORMAT, encoding="utf-8")
    text = (root / REGISTRY).read_text(encoding="utf-8")
    last_import = f"from {PREFIX} import nitro\n"
    last_entry = "    jwt.JwtFormat,\n)"
    assert text.count(last_import) == 1 and text.count(last_entry) == 1
    text = text.replace(last_import, last_import + f"from {PREFIX} import toy\n")
    text = text.replace(last_entry, "    jwt.JwtFormat,\n    toy.ToyFormat,\n)")
    (root / REGISTRY).write_text(text, encoding="utf-8")
    return root


def _changed_files(copy: Path) -> list:
    """Files of the copy that differ from the checkout, or are new."""
    changed = []
    for path in sorted(copy.rglob("*.py")):
        original = COLLECTION / path.relative_to(copy)
        if not original.is_file() or original.read_bytes() != path.read_bytes():
            changed.append(str(path.relative_to(copy)))
    return changed


def test_a_new_format_is_one_file_and_one_registry_entry(tmp_path):
    copy = _copy_with_toy_format(tmp_path)
    assert _changed_files(copy) == ["plugins/module_utils/_attestation/registry.py", "plugins/module_utils/_attestation/toy.py"]
    # The copy first on the path; no entry that would resolve alfred.tee_kms to the checkout.
    path = [str(tmp_path)] + [p for p in sys.path if p and not (Path(p) / "ansible_collections" / "alfred" / "tee_kms").exists()]
    env = {"PYTHONPATH": ":".join(path), "PATH": "/usr/bin:/bin", "NO_PROXY": "*", "no_proxy": "*"}
    code = f"COPY = {str(copy)!r}\n" + textwrap.dedent(CHECKS)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    names = ["alfred", "nitro", "jwt", "toy"]
    assert seen["names"] == seen["formats"] == names
    for option in ("attestation_verify.format", "attestation_verify.trust.formats", "kms_probe.attestation_format",
                   "kms_key.attestation_trust.formats"):
        assert seen[option] == names, option
    assert seen["builtin_root"] is False and seen["with_builtin_root"] == ["nitro"]
    assert seen["unknown"] == "unknown_format: document is neither alfred JSON, a COSE_Sign1 (nitro), a JWS (jwt) nor a TOY1 report (toy)"
    assert seen["wrong_purpose"].startswith("attestation refused (nonce_mismatch: the toy evidence's nonce is not bound to 'kms-decrypt:")
    assert seen["refused"] == [
        "Could not configure attestation trust for key: formats names toy but toy_keys is not set",
        "Could not configure attestation trust for key: toy_keys entries must be 64 lowercase hex characters",
        "Could not validate attestation trust: toy_keys entries must be 64 lowercase hex characters",
    ]


def test_the_registry_refuses_a_class_that_is_not_a_format():
    class Incomplete(registry.AttestationFormat):
        name = "half"
        anchor = "half_key"
        anchor_options = {"half_key": dict(type="str")}

    class Clash(registry.nitro.NitroFormat):
        name = "nitro2"

    for classes, message in (((Incomplete,), "does not implement the abstract method(s) sniff, verify"),
                             ((registry.nitro.NitroFormat, registry.nitro.NitroFormat), "two attestation format classes are named nitro"),
                             ((registry.nitro.NitroFormat, Clash), "both declare the trust field root_certificate"),
                             ((object,), "is not an AttestationFormat subclass")):
        try:
            registry.index(classes)
        except TypeError as exc:
            assert message in str(exc)
        else:
            raise AssertionError(f"{classes} accepted")
