# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""AWS KMS key policies for alfred.tee_kms: build, merge, normalise and evaluate.

Private module_utils: the API may change without notice between releases.

Pure functions, no AWS calls, so every rule here is unit-tested without a server.

The collection owns exactly three statements, recognised by their ``Sid``:

- ``AlfredTeeKmsAttestedDecrypt`` (Allow): ``kms:Decrypt`` and the data-key operations for
  the account's principals, only when ``kms:RecipientAttestation:PCR<n>`` is one of the
  allowed measurements (``StringEqualsIgnoreCase``). It states the allow-list.
- ``AlfredTeeKmsDenyUnattested`` (Deny, every principal): the same operations when the
  attestation condition key is absent or not in the allow-list. Without it the key
  administrators' statement (``kms:*`` for the account, as in the KMS default policy) would
  let any IAM principal with ``kms:Decrypt`` in its IAM policy decrypt without attestation;
  an explicit Deny wins over every Allow, including grants.
- ``AlfredTeeKmsDenyUnattestedPaths`` (Deny, every principal, no condition): the operations
  that reach or move the key's data without taking a ``Recipient`` — ``ReEncryptFrom`` and
  ``ReEncryptTo`` (re-wrap a token to a key the caller controls, then decrypt it there),
  ``CreateGrant`` (hand the key to another principal) and the ``...WithoutPlaintext``
  data-key calls (mint data keys the enclave would trust, with no enclave involved). No
  attestation condition can ever hold for them, so they are denied outright. Key
  administrators are not exempt: they keep ``PutKeyPolicy``, so lifting this Deny is a policy
  change that CloudTrail records, never a silent call.

Every other statement is foreign and kept byte-for-byte: merging splices the text of the
``Statement`` array instead of re-serialising the document. The administrators' statement
(KMS default ``Sid`` "Enable IAM User Permissions") is never removed: merging refuses a
policy that lacks it rather than writing one that could lock the account out.

The evaluator answers, for the subset that matters here, "could a caller presenting verified
attestation with measurement M (or none) decrypt under this policy?". It over-approximates
access: an Allow whose conditions it cannot decide counts as allowing, a Deny counts only
when it certainly applies. So a ``False`` answer is trustworthy, and a ``True`` for a
measurement outside the allow-list is a real finding.
"""

from __future__ import annotations

import fnmatch
import json
import re

SID_ALLOW = "AlfredTeeKmsAttestedDecrypt"
SID_DENY = "AlfredTeeKmsDenyUnattested"
SID_DENY_PATHS = "AlfredTeeKmsDenyUnattestedPaths"
SID_ADMIN = "Enable IAM User Permissions"
OWN_SIDS = (SID_ALLOW, SID_DENY, SID_DENY_PATHS)

# Operations that hand out plaintext and accept a Recipient (attestation document).
ATTESTED_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyPair")
# Operations that accept no Recipient and still lead to the plaintext (or put data under the
# key that the enclave would take as genuine): denied to every principal.
UNATTESTED_PATH_ACTIONS = ("kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:CreateGrant",
                           "kms:GenerateDataKeyWithoutPlaintext", "kms:GenerateDataKeyPairWithoutPlaintext")
# Every key-scoped operation by which a caller can obtain or re-wrap this key's plaintext.
PLAINTEXT_ACTIONS = ATTESTED_ACTIONS + UNATTESTED_PATH_ACTIONS
# Operations that change who may do the above; only the key administrators may hold them
# (CreateGrant is one too, and is denied outright).
CONTROL_ACTIONS = ("kms:PutKeyPolicy",)
CONDITION_PREFIX = "kms:RecipientAttestation:"
IMAGE_SHA384 = CONDITION_PREFIX + "ImageSha384"


class PolicyError(ValueError):
    """A policy document cannot be parsed or safely changed."""


def condition_key(pcr: int = 0) -> str:
    if not isinstance(pcr, int) or isinstance(pcr, bool) or not 0 <= pcr <= 31:
        raise PolicyError(f"PCR index must be an integer 0-31, got {pcr!r}")
    return f"{CONDITION_PREFIX}PCR{pcr}"


def account_root(account_id: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account_id}:root"


# --------------------------------------------------------------------------- build

def admin_statement(account_id: str, partition: str = "aws") -> dict:
    """The KMS default policy's statement: the account (its IAM policies) administers the key."""
    return {"Sid": SID_ADMIN, "Effect": "Allow", "Principal": {"AWS": account_root(account_id, partition)},
            "Action": "kms:*", "Resource": "*"}


def own_statements(account_id: str, measurements, cond_key: str, partition: str = "aws") -> list:
    values = [m.lower() for m in measurements]
    if not values:
        raise PolicyError("the allow-list is empty; an empty allow-list would lock every enclave out")
    return [
        {"Sid": SID_ALLOW, "Effect": "Allow", "Principal": {"AWS": account_root(account_id, partition)},
         "Action": list(ATTESTED_ACTIONS), "Resource": "*",
         "Condition": {"StringEqualsIgnoreCase": {cond_key: values}}},
        {"Sid": SID_DENY, "Effect": "Deny", "Principal": "*",
         "Action": list(ATTESTED_ACTIONS), "Resource": "*",
         "Condition": {"StringNotEqualsIgnoreCase": {cond_key: values}}},
        {"Sid": SID_DENY_PATHS, "Effect": "Deny", "Principal": "*",
         "Action": list(UNATTESTED_PATH_ACTIONS), "Resource": "*"},
    ]


def build_policy(account_id: str, measurements, cond_key: str, partition: str = "aws") -> str:
    doc = {"Version": "2012-10-17", "Id": "alfred-tee-kms",
           "Statement": [admin_statement(account_id, partition)] + own_statements(account_id, measurements, cond_key, partition)}
    return json.dumps(doc, indent=2)


# --------------------------------------------------------------------------- parse / splice

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _skip(text: str, pos: int) -> int:
    return _WS.match(text, pos).end()


def parse(text: str) -> dict:
    try:
        doc = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"the key policy is not valid JSON ({exc})") from None
    except RecursionError:  # KMS returns what was put: a policy nested thousands deep is no policy of ours
        raise PolicyError("the key policy is not valid JSON (it nests too deep)") from None
    if not isinstance(doc, dict):
        raise PolicyError("the key policy is not a JSON object")
    statements = doc.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not all(isinstance(s, dict) for s in statements):
        raise PolicyError("the key policy's Statement is neither an object nor a list of objects")
    doc["Statement"] = statements
    return doc


def statement_spans(text: str):
    """Locate the top-level ``Statement`` value: (start, end, [(start, end) per statement], is_list).

    Positions index ``text``; each statement span covers exactly its JSON text.
    """
    pos = _skip(text, 0)
    if text[pos:pos + 1] != "{":
        raise PolicyError("the key policy is not a JSON object")
    pos = _skip(text, pos + 1)
    found = None
    while text[pos:pos + 1] != "}":
        try:
            name, pos = _DECODER.raw_decode(text, pos)
            pos = _skip(text, pos)
            if text[pos:pos + 1] != ":":
                raise ValueError("expected ':'")
            pos = _skip(text, pos + 1)
            start = pos
            value, pos = _DECODER.raw_decode(text, pos)
        except ValueError as exc:
            raise PolicyError(f"the key policy is not valid JSON ({exc})") from None
        if name == "Statement":
            found = (start, pos, value)
        pos = _skip(text, pos)
        if text[pos:pos + 1] == ",":
            pos = _skip(text, pos + 1)
        elif text[pos:pos + 1] != "}":
            raise PolicyError("the key policy is not valid JSON (expected ',' or '}')")
    if found is None:
        return None
    start, end, value = found
    if isinstance(value, dict):
        return start, end, [(start, end)], False
    if not isinstance(value, list):
        raise PolicyError("the key policy's Statement is neither an object nor a list of objects")
    spans = []
    pos = _skip(text, start + 1)
    while text[pos:pos + 1] != "]":
        item_start = pos
        dummy, pos = _DECODER.raw_decode(text, pos)
        spans.append((item_start, pos))
        pos = _skip(text, pos)
        if text[pos:pos + 1] == ",":
            pos = _skip(text, pos + 1)
    return start, end, spans, True


def merge(text: str, measurements, cond_key: str, account_id: str, partition: str = "aws") -> str:
    """Return ``text`` with the collection's statements set to ``measurements``.

    Foreign statements keep their exact bytes and order; the collection's statements go at
    the end (replacing earlier copies). Refuses a policy without the administrators'
    statement: writing it could make the key unmanageable.
    """
    doc = parse(text)
    statements = doc["Statement"]
    if not any(is_admin_statement(s) for s in statements):
        raise PolicyError(f"the key policy has no key administrators' statement ('{SID_ADMIN}' granting kms:* to the account); "
                          "refusing to change a policy that could lock the key administrators out")
    located = statement_spans(text)
    if located is None:
        raise PolicyError("the key policy has no Statement")
    start, end, spans, dummy = located
    kept = [text[a:b] for (a, b), statement in zip(spans, statements) if statement.get("Sid") not in OWN_SIDS]
    ours = [json.dumps(s, indent=2) for s in own_statements(account_id, measurements, cond_key, partition)]
    array = "[\n" + ",\n".join(kept + ours) + "\n]"
    merged = text[:start] + array + text[end:]
    parse(merged)  # never write what we could not read back
    return merged


# --------------------------------------------------------------------------- normalise

def _as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _norm_principal(value):
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return {k: sorted(str(v) for v in _as_list(vals)) for k, vals in sorted(value.items())}
    return value


def _norm_condition(block):
    if not isinstance(block, dict):
        return block
    out = {}
    for operator, tests in sorted(block.items()):
        if not isinstance(tests, dict):
            out[operator] = tests
            continue
        ignore_case = "IgnoreCase" in operator
        out[operator] = {k.lower(): sorted({(str(v).lower() if ignore_case else str(v)) for v in _as_list(vals)})
                         for k, vals in sorted(tests.items())}
    return out


def normalise_statement(statement: dict) -> dict:
    out = {}
    for field, value in statement.items():
        if field in ("Action", "NotAction"):
            out[field] = sorted({str(a).lower() for a in _as_list(value)})
        elif field in ("Resource", "NotResource"):
            out[field] = sorted(str(r) for r in _as_list(value))
        elif field in ("Principal", "NotPrincipal"):
            out[field] = _norm_principal(value)
        elif field == "Condition":
            out[field] = _norm_condition(value)
        else:
            out[field] = value
    return out


def normalise(text_or_doc) -> str:
    """Canonical text of a policy: equal for policies that differ only in formatting, key
    order, statement order, single-vs-list values or case of case-insensitive values."""
    doc = parse(text_or_doc) if isinstance(text_or_doc, str) else dict(text_or_doc)
    statements = sorted((json.dumps(normalise_statement(s), sort_keys=True) for s in _as_list(doc.get("Statement"))))
    rest = {k: v for k, v in doc.items() if k != "Statement"}
    return json.dumps({"rest": rest, "statements": statements}, sort_keys=True)


def equivalent(a, b) -> bool:
    return normalise(a) == normalise(b)


def pretty(text: str) -> str:
    """Readable JSON for --diff (sorted keys, two-space indent)."""
    try:
        return json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    except (TypeError, ValueError):
        return text


# --------------------------------------------------------------------------- read

def is_admin_statement(statement: dict) -> bool:
    if statement.get("Sid") == SID_ADMIN and statement.get("Effect") == "Allow":
        return True
    return (statement.get("Effect") == "Allow" and "Condition" not in statement
            and any(a.lower() == "kms:*" for a in _as_list(statement.get("Action")))
            and all(_is_account_root(p) for p in _principals(statement)))


def _is_account_root(principal: str) -> bool:
    return bool(re.match(r"^(arn:[a-z-]+:iam::\d{12}:root|\d{12})$", principal or ""))


def _principals(statement: dict) -> list:
    value = statement.get("Principal")
    if value == "*":
        return ["*"]
    if isinstance(value, dict):
        out = []
        for vals in value.values():
            out.extend(str(v) for v in _as_list(vals))
        return out
    return [str(v) for v in _as_list(value)]


def allowed_measurements(doc: dict) -> list:
    """The allow-list stated by the collection's Allow statement (lowercase, in order)."""
    for statement in doc["Statement"]:
        if statement.get("Sid") == SID_ALLOW:
            for tests in (statement.get("Condition") or {}).values():
                if isinstance(tests, dict):
                    for key, values in tests.items():
                        if key.startswith(CONDITION_PREFIX):
                            return [str(v).lower() for v in _as_list(values)]
    return []


def own_condition_key(doc: dict):
    for statement in doc["Statement"]:
        if statement.get("Sid") == SID_ALLOW:
            for tests in (statement.get("Condition") or {}).values():
                if isinstance(tests, dict):
                    for key in tests:
                        if key.startswith(CONDITION_PREFIX):
                            return key
    return None


# --------------------------------------------------------------------------- evaluate

def _action_matches(statement: dict, action: str) -> bool:
    if "NotAction" in statement:
        return not any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in _as_list(statement["NotAction"]))
    return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in _as_list(statement.get("Action")))


def _covers_everyone(statement: dict) -> bool:
    """Does the statement certainly apply to any caller of the account (for a Deny)?"""
    if "NotPrincipal" in statement:
        return False
    return any(p == "*" for p in _principals(statement))


def _test(operator: str, key: str, values: list, context: dict):
    """Three-valued: True, False or None (cannot decide).

    ``context`` maps the attestation keys the measurement answers to its value; with no
    attestation at all it is empty and every attestation key is absent from the request.
    """
    base = operator
    for prefix in ("ForAnyValue:", "ForAllValues:"):
        if base.startswith(prefix):
            base = base[len(prefix):]
    if_exists = base.endswith("IfExists")
    if if_exists:
        base = base[:-len("IfExists")]
    lowered = {k.lower(): v for k, v in context.items()}
    if key.lower() not in lowered:
        if not key.lower().startswith(CONDITION_PREFIX.lower()):
            return None  # some other request property we do not model
        if lowered:
            return None  # another PCR of an attested caller: unknown here
        present = None
    else:
        present = lowered[key.lower()]
    if base == "Null":
        want_null = str(values[0]).lower() == "true" if values else True
        return (present is None) == want_null
    if present is None:
        if if_exists:
            return True
        return base.startswith(("StringNot", "ArnNot"))  # negated operators match a missing key
    ignore = base.endswith("IgnoreCase")
    left = present.lower() if ignore else present
    rights = [str(v).lower() if ignore else str(v) for v in values]
    if base in ("StringEquals", "StringEqualsIgnoreCase"):
        return left in rights
    if base in ("StringNotEquals", "StringNotEqualsIgnoreCase"):
        return left not in rights
    if base == "StringLike":
        return any(fnmatch.fnmatchcase(left, r) for r in rights)
    if base == "StringNotLike":
        return not any(fnmatch.fnmatchcase(left, r) for r in rights)
    return None


def _conditions(statement: dict, context: dict):
    result = True
    for operator, tests in (statement.get("Condition") or {}).items():
        if not isinstance(tests, dict):
            return None
        for key, values in tests.items():
            outcome = _test(operator, key, _as_list(values), context)
            if outcome is False:
                return False
            if outcome is None:
                result = None
    return result


def _context(measurement, cond_keys) -> dict:
    if measurement is None:
        return {}
    return {key: measurement for key in cond_keys}


def measurement_keys(doc: dict) -> list:
    """The condition keys a measurement answers: the collection's key, and ImageSha384 with
    PCR0 (AWS defines ImageSha384 as the enclave image hash, which is PCR0)."""
    own = own_condition_key(doc) or condition_key(0)
    return [own, IMAGE_SHA384] if own == condition_key(0) else [own]


def evaluate(doc: dict, measurement, action: str = "kms:Decrypt", cond_keys=None) -> bool:
    """Could a caller presenting verified attestation with ``measurement`` (None: no
    attestation) perform ``action``? ``cond_keys``: the attestation condition keys that the
    measurement answers (default: the collection's own key and ImageSha384, which is PCR0)."""
    context = _context(measurement.lower() if measurement else None, cond_keys or measurement_keys(doc))
    allowed = False
    for statement in doc["Statement"]:
        if not _action_matches(statement, action):
            continue
        outcome = _conditions(statement, context)
        if statement.get("Effect") == "Deny":
            if outcome is True and _covers_everyone(statement):
                return False
        elif statement.get("Effect") == "Allow" and outcome is not False:
            allowed = True
    return allowed


def _has_attestation_condition(statement: dict) -> bool:
    for operator, tests in (statement.get("Condition") or {}).items():
        if not isinstance(tests, dict) or "Not" in operator or operator.startswith("Null"):
            continue
        for key, values in tests.items():
            if key.lower().startswith(CONDITION_PREFIX.lower()) and not any("*" in str(v) or "?" in str(v) for v in _as_list(values)):
                return True
    return False


def findings(doc: dict, allowed=None) -> list:
    """Problems with who may decrypt under this policy, as readable sentences."""
    out = []
    statements = doc["Statement"]
    admins = set()
    for statement in statements:
        if is_admin_statement(statement):
            admins.update(_principals(statement))
    if not admins:
        out.append(f"no key administrators' statement ('{SID_ADMIN}' granting kms:* to the account)")
    own = [s for s in statements if s.get("Sid") in OWN_SIDS]
    if not any(s.get("Sid") == SID_ALLOW for s in own):
        out.append(f"the collection's attested-decrypt statement ({SID_ALLOW}) is missing")
    if not any(s.get("Sid") == SID_DENY for s in own):
        out.append(f"the collection's deny statement ({SID_DENY}) is missing: principals allowed by IAM through the "
                   "administrators' statement can decrypt without attestation")
    if not any(s.get("Sid") == SID_DENY_PATHS for s in own):
        out.append(f"the collection's deny statement ({SID_DENY_PATHS}) is missing: operations that take no attestation "
                   "(ReEncrypt, CreateGrant, ...WithoutPlaintext) are not denied")
    for index, statement in enumerate(statements):
        label = f"statement {index} ({statement.get('Sid') or 'no Sid'})"
        if statement.get("Effect") != "Allow" or is_admin_statement(statement):
            continue
        control = [a for a in CONTROL_ACTIONS if _action_matches(statement, a)]
        if control:
            out.append(f"{label} allows {', '.join(control)} to {', '.join(_principals(statement)) or 'a NotPrincipal set'}: "
                       "whoever holds it can open an unattested path; keep it to the key administrators")
        if not any(_action_matches(statement, a) for a in ATTESTED_ACTIONS):
            continue
        if "NotPrincipal" in statement:
            out.append(f"{label} allows decrypt with NotPrincipal, which cannot be evaluated safely")
            continue
        principals = _principals(statement)
        if "*" in principals and not _has_attestation_condition(statement):
            out.append(f"{label} allows decrypt to every principal ('*') without an attestation condition")
            continue
        if not _has_attestation_condition(statement):
            out.append(f"{label} allows decrypt to {', '.join(principals)} without an attestation condition")
    if allowed is not None:
        for value in allowed:
            if set(value) == {"0"}:
                out.append("the allow-list contains an all-zero (debug enclave) measurement")
    # The whole policy, every statement together: can a caller without attestation (or a
    # debug enclave) reach plaintext by any operation?
    if evaluate(doc, None):
        out.append("a caller without attestation can decrypt")
    out.extend(f"a caller without attestation can call {action}" for action in PLAINTEXT_ACTIONS[1:] if evaluate(doc, None, action))
    if evaluate(doc, "0" * 96):
        out.append("a debug enclave (all-zero measurement) can decrypt")
    return out
