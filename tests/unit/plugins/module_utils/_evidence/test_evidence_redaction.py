# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Redactor and file scanner: planted secrets in every form are removed, digests stay readable."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import secret_patterns as sp

SECRET = 'Xq7"pL9\\zR-s3cr3t'  # contains characters that JSON escapes
PEM = ("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIPz1NQ2+f9Cq0bW5wQ5l7m5kq3bJd3kAjmDfV0l4sKZy\n"
       "-----END PRIVATE KEY-----\n")
PLANTED = {
    "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
    "aws_session_key_id": "ASIAY34FZKBOKMUTVV7A",
    "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "jwt": "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTEiLCJleHAiOjE3MDAwMDAwMDB9.c2lnbmF0dXJlLWJ5dGVz",
    "bearer": "Zm9vYmFyYmF6cXV4LXRva2VuLXZhbHVl",
    "google": "ya29.a0AfH6SMBx-Q3nLpRtYz8Kk2mN4pQ5rS6tU7",
    "github": "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5",
    "slack": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "refresh": "1//0gLmN3pQ5rS7tU9vW1xY3zA5bC7dE9fG",
}
MEASUREMENTS = [
    "a3f1" * 24,  # sha384 hex (96)
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",  # sha256
    "sha256:" + hashlib.sha256(b"x").hexdigest(),
    ("A3F1" * 24),  # upper-case sha384 hex
]


def planted_text():
    return "\n".join([
        f"access key {PLANTED['aws_access_key_id']} and {PLANTED['aws_session_key_id']}",
        f"AWS_SECRET_ACCESS_KEY={PLANTED['aws_secret_access_key']}",
        json.dumps({"aws_secret_access_key": PLANTED["aws_secret_access_key"]}),
        f"token={PLANTED['jwt']}",
        f"Authorization: Bearer {PLANTED['bearer']}",
        f"google {PLANTED['google']} github {PLANTED['github']} slack {PLANTED['slack']}",
        json.dumps({"refresh_token": PLANTED["refresh"], "access_token": "opaque-access-123"}),
        "https://api.example/cb?access_token=opaque-access-456&x=1",
        PEM,
        json.dumps({"key": PEM}),
        "db password=Hunter2Hunter2!",
    ])


def test_patterns_mask_every_planted_credential():
    counts = {}
    out = sp.Redactor().redact_text(planted_text(), counts)
    for value in list(PLANTED.values()) + ["opaque-access-123", "opaque-access-456", "Hunter2Hunter2!", "MC4CAQAwBQYDK2VwBCIE"]:
        assert value not in out, value
    for detector in ("aws_access_key_id", "aws_secret_access_key", "jwt", "bearer_token", "oauth_token",
                     "oauth_token_field", "private_key", "password_assignment"):
        assert f"[REDACTED:{detector}]" in out and counts.get(detector), detector
    assert "Authorization: Bearer [REDACTED:bearer_token]" in out


@pytest.mark.parametrize("value", MEASUREMENTS)
def test_digests_and_measurements_stay_readable(value):
    # Where the collection writes digests: measurements, chain hashes, canary and command digests.
    text = (f"measurement={value} digest {value} \"hash\": \"{value}\", \"prev\":\"{value}\" canary_sha256={value} "
            f"command sha256:{value.removeprefix('sha256:')} plaintext_sha256: {value} key_id=tokens/refresh v2 1.2.3")
    counts = {}
    assert sp.Redactor().redact_text(text, counts) == text
    assert counts == {}
    assert sp.find_findings(text) == []


def test_known_values_in_raw_json_escaped_and_base64_forms():
    red = sp.Redactor([SECRET])
    forms = {
        "raw": f"value {SECRET} end",
        "json": json.dumps({"x": f"value {SECRET} end"}),
        "json_ascii": json.dumps({"x": f"ü {SECRET}"}, ensure_ascii=True),
        "b64": base64.b64encode(SECRET.encode()).decode(),
        "b64_urlsafe_nopad": base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("="),
        "b64_embedded_1": base64.b64encode(b"u:" + SECRET.encode()).decode(),
        "b64_embedded_2": base64.b64encode(b"ab:" + SECRET.encode() + b"!").decode(),
        "b64_embedded_1byte": base64.b64encode(b"x" + SECRET.encode() + b"yz").decode(),
        "basic_auth": "Authorization: Basic " + base64.b64encode(b"admin:" + SECRET.encode()).decode(),
    }
    for name, text in forms.items():
        out = red.redact_text(text)
        assert "[REDACTED:known_secret]" in out, name
        assert SECRET not in out and json.dumps(SECRET)[1:-1] not in out, name
        core = base64.b64encode(SECRET.encode()).decode()[:12]
        assert core not in out, name


def test_known_values_from_secret_names_only_and_min_length():
    red = sp.Redactor()
    red.add_known_from_mapping({
        "AWS_SECRET_ACCESS_KEY": "abcdef123456", "AWS_SESSION_TOKEN": "sessiontok-9",
        "db_Password": "pw-123456", "api_key": "short", "user": "visible-user",
        "nested": {"client_secret": "nested-secret-1", "public": "visible-public"},
        "vault_settings": {"x": "deep-credential"},  # name does not match: its leaves are not secret
        "private_data": ["list-secret-1", 7],
        "gh_token": "true", "my_token": "123456",  # trivial values are never tracked
    })
    text = ("abcdef123456 sessiontok-9 pw-123456 short visible-user nested-secret-1 visible-public "
            "deep-credential list-secret-1 true 123456")
    out = red.redact_text(text)
    for gone in ("abcdef123456", "sessiontok-9", "pw-123456", "nested-secret-1", "list-secret-1"):
        assert gone not in out
    for kept in ("short", "visible-user", "visible-public", "deep-credential", " true ", "123456"):
        assert kept in out


@pytest.mark.parametrize("name,secret", [
    ("AWS_SECRET_ACCESS_KEY", True), ("AWS_SESSION_TOKEN", True), ("vault_password", True), ("ssh_passwd", True),
    ("oauth_credentials", True), ("tls_private_key", True), ("github_api_key", True), ("x_access_key", True),
    ("kms_key_id", False), ("env", False), ("action", False), ("awx_job_id", False), ("kms_allowed_measurements", False),
])
def test_secret_names(name, secret):
    assert sp.is_secret_name(name) is secret


def test_redact_structures_and_keys():
    red = sp.Redactor(["topsecret-value"])
    data = {"a": ["x topsecret-value", {"topsecret-value": 1}], "n": 5, "b": True, "c": None}
    out = red.redact(data)
    assert "topsecret-value" not in json.dumps(out)
    assert out["n"] == 5 and out["b"] is True and out["c"] is None


def test_already_masked_values_are_not_double_masked():
    text = 'password=[REDACTED:known_secret] token: "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" password=********'
    assert sp.Redactor().redact_text(text) == text


# ---------------------------------------------------------------------------------- scanner
def test_scan_counts_and_masks(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("ok line\nkey AKIAIOSFODNN7EXAMPLE here\nmeasurement " + "ab" * 48 + "\n"
                   f"auth {PLANTED['jwt']}\n" + PEM)
    result = sp.scan_paths([str(log)])
    assert result["by_detector"] == {"aws_access_key_id": 1, "jwt": 1, "private_key": 1}
    assert result["total"] == 3 and result["new_findings"] == 3
    assert [(s["line"], s["detector"]) for s in result["samples"]] == [(2, "aws_access_key_id"), (4, "jwt"), (5, "private_key")]
    dumped = json.dumps(result)
    assert "AKIAIOSFODNN7EXAMPLE" not in dumped and PLANTED["jwt"] not in dumped
    assert result["offsets"][str(log)] == log.stat().st_size


def test_scan_since_only_counts_new_lines_with_true_line_numbers(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("AKIAIOSFODNN7EXAMPLE old\nclean\n")
    first = sp.scan_paths([str(log)])
    assert first["total"] == 1
    with open(log, "a") as handle:
        handle.write("clean again\nBearer abcdefghijklmnop\n")
    second = sp.scan_paths([str(log)], since=first["offsets"])
    assert second["by_detector"] == {"bearer_token": 1} and second["new_findings"] == 1
    assert second["samples"][0]["line"] == 4
    third = sp.scan_paths([str(log)], since=second["offsets"])
    assert third["total"] == 0 and third["new_findings"] == 0
    # rotation: the file shrank below its offset -> scanned from the start
    log.write_text("ghp_" + "x" * 36 + "\n")
    fourth = sp.scan_paths([str(log)], since=third["offsets"])
    assert fourth["reset"] == [str(log)] and fourth["new_findings"] == 1


def test_scan_baseline(tmp_path):
    log = tmp_path / "a.log"
    log.write_text("AKIAIOSFODNN7EXAMPLE\nAKIAIOSFODNN7EXAMPLF\n")
    assert sp.scan_paths([str(log)], baseline={"aws_access_key_id": 1})["new_findings"] == 1
    assert sp.scan_paths([str(log)], baseline={"by_detector": {"aws_access_key_id": 2}})["new_findings"] == 0
    assert sp.scan_paths([str(log)], baseline=5)["new_findings"] == 0


def test_scan_dirs_globs_missing_binary_and_known(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "x.log").write_text("leaked my-known-secret-1\n")
    (tmp_path / "d" / "bin.dat").write_bytes(b"\0AKIAIOSFODNN7EXAMPLE")
    result = sp.scan_paths([str(tmp_path / "d"), str(tmp_path / "nope" / "*.log")], known_values=["my-known-secret-1"])
    assert result["by_detector"] == {"known_secret": 1}
    assert result["skipped_binary"] == [str(tmp_path / "d" / "bin.dat")]
    assert result["missing"] == [str(tmp_path / "nope" / "*.log")]
    assert "my-known-secret-1" not in json.dumps(result)


# ---------------------------------------------------------------------------------- issue 13 item 5
HEX32 = "5f2b9c0e7d41a8f36b1e0c9d2a7f4e81"


@pytest.mark.parametrize("text, secret", [
    (f"api_key={HEX32}", HEX32),
    ("password=123456789", "123456789"),
    (f"Authorization: Bearer {HEX32}", HEX32),
    (f'{{"client_secret": "{HEX32}"}}', HEX32),
    ("aws_secret_access_key=da39a3ee5e6b4b0d3255bfef95601890afd80709", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
    (f"https://deploy:{HEX32}@git.example/repo", HEX32),
], ids=["hex_api_key", "numeric_password", "hex_bearer", "hex_client_secret", "sha1_shaped_secret", "hex_url_password"])
def test_hex_only_or_numeric_secrets_are_treated_as_digests(text, secret):
    out = sp.Redactor().redact_text(text)
    assert secret not in out and "[REDACTED:" in out, out


def test_only_whole_sha256_and_sha384_digests_standing_alone_stay_readable():
    sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
    text = f"digest {sha1} measurement={'ab' * 48} token sha256:{'ef' * 32}"
    assert sp.Redactor().redact_text(text) == text
    assert sp.find_findings(f"api_key={'cd' * 32}x") != []  # not a digest once anything is appended


def test_numeric_known_values_of_eight_digits_and_more_are_tracked():
    red = sp.Redactor()
    red.add_known_from_mapping({"db_password": "12345678", "session_ttl": "3600"})
    assert red.redact_text("pw 12345678 ttl 3600") == "pw [REDACTED:known_secret] ttl 3600"


def test_url_encoded_and_line_split_forms_of_known_secrets():
    value = "p@ss/w0rd+Secret&more=1"
    red = sp.Redactor([value])
    import urllib.parse

    for form in (urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value), urllib.parse.quote(value)):
        out = red.redact_text(f"https://api.example/login?pw={form}&x=1")
        assert form not in out and "[REDACTED:known_secret]" in out, form
    wrapped = value[:9] + "\n" + value[9:17] + "\r\n  " + value[17:]
    out = red.redact_text(f"start {wrapped} end")
    assert out == "start [REDACTED:known_secret] end", out
    escaped = json.dumps(value[:12] + "\n" + value[12:])[1:-1]
    assert red.redact_text(escaped) == "[REDACTED:known_secret]"


AKID, SECRET_KEY = "ASIAY34FZKBOKMUTVV7A", "9drTJvcXLB89EXAMPLEKEYwJalrXUtnFEMIK7MDENG"[:40]
STS = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD6EXAMPLETOKENvalue1234567890abcd"


@pytest.mark.parametrize("output", [
    f"CREDENTIALS\t{AKID}\t2026-12-02T13:00:00Z\t{SECRET_KEY}\t{STS}\n",
    ("-------------------------------------------------------------\n"
     "|                      GetSessionToken                      |\n"
     "+-----------------------------------------------------------+\n"
     f"||  AccessKeyId     |  {AKID}                        ||\n"
     "||  Expiration      |  2026-12-02T13:00:00Z                 ||\n"
     f"||  SecretAccessKey |  {SECRET_KEY}  ||\n"
     f"||  SessionToken    |  {STS}  ||\n"),
    f"Credentials:\n  AccessKeyId: {AKID}\n  SecretAccessKey: {SECRET_KEY}\n  SessionToken: {STS}\n",
    json.dumps({"Credentials": {"AccessKeyId": AKID, "SecretAccessKey": SECRET_KEY, "SessionToken": STS}}),
    f"token is {STS} alone",
], ids=["text", "table", "yaml", "json", "sts_token_alone"])
def test_aws_cli_text_and_table_credential_output(output):
    out = sp.Redactor().redact_text(output)
    assert SECRET_KEY not in out and STS not in out and STS[:24] not in out, out
    assert AKID not in out


def test_hook_command_fragments():
    command = ("curl -fsS -H 'Authorization: token Zx9kQ2mV7pL4rT8wN3bY6cH1' https://deploy:Hunter2Secret@api.example/rotate "
               "&& DEPLOY_TOKEN=dt-0a1b2c3d4e5f6 REGION=eu-west-1 ./bin/roll --password s3cr3tPass --key tokens/refresh "
               "--measurement " + "ab" * 48)
    fragments = sp.command_fragments(command)
    for secret in ("Zx9kQ2mV7pL4rT8wN3bY6cH1", "Hunter2Secret", "deploy:Hunter2Secret", "dt-0a1b2c3d4e5f6", "s3cr3tPass"):
        assert secret in fragments, (secret, fragments)
    for readable in ("eu-west-1", "tokens/refresh", "ab" * 48, "./bin/roll", "https://deploy:Hunter2Secret@api.example/rotate"):
        assert readable not in fragments, (readable, fragments)


# ---------------------------------------------------------------------------------- issue 22 item 10
HEX64 = hashlib.sha256(b"planted hex token").hexdigest()
HEX96 = hashlib.sha384(b"planted hex token").hexdigest()


@pytest.mark.parametrize("text, secret", [
    (f"Authorization: Bearer {HEX64}", HEX64),
    (f"curl -H 'Authorization: bearer {HEX64}'", HEX64),
    (f"password={HEX64}", HEX64),
    (f"db password: 0x{HEX64}", HEX64),
    (f"token={HEX64}", HEX64),
    (f"secret: {HEX64}", HEX64),
    (f'{{"client_secret": "{HEX64}"}}', HEX64),
    (f"X-Vault-Token: {HEX64}", HEX64),
    (f"api_key={HEX64}", HEX64),
    (f"aws_session_token: {HEX64}", HEX64),
    (f"session_token=sha256:{HEX64}", HEX64),
    (f"token: {HEX96}", HEX96),
    (f"https://deploy:{HEX64}@git.example/repo", HEX64),
], ids=["bearer", "bearer_lower_in_curl", "password", "password_0x", "token", "secret_colon", "json_client_secret",
        "vault_token_header", "api_key", "aws_session_token", "sha256_prefixed_after_keyword", "hex96_after_token",
        "url_password"])
def test_64_hex_after_a_secret_keyword_is_a_secret_not_a_digest(text, secret):
    counts = {}
    out = sp.Redactor().redact_text(text, counts)
    assert secret not in out and "[REDACTED:" in out, out
    assert sp.find_findings(text), text  # secret_scan counts it too


@pytest.mark.parametrize("text, secret", [
    ("X-Token: s3cr3tV4l", "s3cr3tV4l"),
    ("Private-Token: pt-77aa11bb", "pt-77aa11bb"),
    ("Cookie: sid=c00kie-v4lue; Path=/", "c00kie-v4lue"),
    ("Authorization: Basic ZGVwbG95Okh1bnRlcjI=", "ZGVwbG95Okh1bnRlcjI="),
    ("Authorization: token gh-style-1234abcd", "gh-style-1234abcd"),
    ("Proxy-Authorization: Negotiate YIIB9gYGKwYBBQUC", "YIIB9gYGKwYBBQUC"),
    ("db_pass=Hunter2xyz", "Hunter2xyz"),
    ('{"pass": "Hunter2xyz"}', "Hunter2xyz"),
    ("credentials: cr3d-v4lue-01", "cr3d-v4lue-01"),
    ("pw=Hunter2xyz", "Hunter2xyz"),
    ('{"secret": "s3cr3t-val"}', "s3cr3t-val"),
    (f"token=sha256:{HEX64}", HEX64),
], ids=["x_token", "private_token", "cookie", "basic", "authorization_token_scheme",
        "negotiate", "db_pass", "json_pass", "credentials", "pw", "json_secret", "sha256_prefixed_token"])
def test_header_style_and_other_secret_keywords_are_masked(text, secret):
    out = sp.Redactor().redact_text(text)
    assert secret not in out and "[REDACTED:" in out, out


@pytest.mark.parametrize("text", [
    f'{{"seq": 12, "prev": "{HEX64}", "hash": "{HEX64}", "type": "task_result"}}',
    f"chain head: seq 125 sha256 {HEX64}",
    f'"canary_sha256": "{HEX64}", "plaintext_sha256": "{HEX64}", "command_sha256": "{HEX64}"',
    f'"command": "sha256:{HEX64}"',
    f'"allowed_measurements": {{"after": ["{HEX96}", "{HEX96.upper()}"]}}, "measurement": "{HEX96}"',
    f"  + {HEX96[:12]} (api-v43)  added",
    '"key_id": "tokens/refresh", "token_key_id": "tokens/refresh", "token_version": "3"',
    "KMS_KEY_ID=tokens/refresh KMS_KEY_VERSION=1 NEXT_KMS_KEY_VERSION=2",
    '"ansible_core_version": "2.19.14", "collection_version": "1.4.0", "schema": "alfred.tee_kms/evidence/v1"',
    '"probes": [{"name": "canary", "passed": true, "detail": "decrypted through the attested path"}]',
    '"secret_scan": {"by_detector": {"jwt": 1}, "total": 1, "new_findings": 0}',
    "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "Authorization header missing; the token API answered 401",
], ids=["chain_line", "chain_head_summary", "probe_and_command_digests", "command_digest", "measurements",
        "allowlist_line", "key_ids", "runbook_env", "versions", "probe_passed", "secret_scan_record", "kms_key_arn",
        "prose"])
def test_digest_exemption_keeps_digests_measurements_key_ids_and_versions_only(text):
    """The exemption is narrow: what the collection writes stays readable, the same hex after a
    secret keyword on the same line does not."""
    counts = {}
    planted = f" Authorization: Bearer {HEX64} password={HEX64}"
    assert sp.Redactor().redact_text(text + planted, counts) == (
        text + " Authorization: Bearer [REDACTED:bearer_token] password=[REDACTED:password_assignment]")
    assert counts == {"bearer_token": 1, "password_assignment": 1}


@pytest.mark.parametrize("secret_name, readable_name", [
    ("db_pass", "bypass"), ("ansible_become_pass", "passed"), ("ANSIBLE_NET_AUTH_PASS", "compass"),
    ("MYSQL_PWD", "PWD"), ("db_pw", "OLDPWD"), ("vault_creds", "sort_keys"), ("aws_creds", "kms_keys"),
    ("signing_key", "signing_public_key"), ("ALFRED_EVIDENCE_SIGNING_KEY", "public_key"),
    ("encryption-key", "evidence_verify_public_key"), ("deploy_key", "key"), ("id_jwt", "kms_key_id"),
    ("license_key", "kms_key"), ("hmac_key", "s3_key"),
])
def test_names_that_say_secret_in_other_ways(secret_name, readable_name):
    assert sp.is_secret_name(secret_name) is True
    assert sp.is_secret_name(readable_name) is False


def test_values_of_pass_pwd_and_key_names_are_learnt():
    red = sp.Redactor()
    red.add_known_from_mapping({"db_pass": "P4ss-value-1", "MYSQL_PWD": "Pwd-value-22", "deploy_key": "K3y-value-333",
                                "PWD": "/no/such/dir/here", "public_key": "PublicValue-44"})
    out = red.redact_text("P4ss-value-1 Pwd-value-22 K3y-value-333 /no/such/dir/here PublicValue-44")
    assert out == "[REDACTED:known_secret] " * 3 + "/no/such/dir/here PublicValue-44"


def test_secret_named_paths_of_files_stay_readable(tmp_path):
    key_file = tmp_path / "evidence.pem"
    key_file.write_text("not the point")
    missing = tmp_path / "missing.pem"
    red = sp.Redactor()
    red.add_known_from_mapping({"ALFRED_EVIDENCE_SIGNING_KEY": str(key_file), "vault_password_file": str(tmp_path),
                                "ssh_private_key_file": str(missing), "api_token": "/looks/like/a/path-but-is-not-9",
                                "aws_secret_key": "/K7MDENGbPxRfiCYEXAMPLEKEYwJalrXUtnFEMI"})
    out = red.redact_text(f"Could not load {key_file}: bad; {tmp_path}; {missing}; /looks/like/a/path-but-is-not-9; "
                          "/K7MDENGbPxRfiCYEXAMPLEKEYwJalrXUtnFEMI")
    assert out == f"Could not load {key_file}: bad; {tmp_path}; {missing}; [REDACTED:known_secret]; [REDACTED:known_secret]"


LONG_SECRET = "wrapped-Secret/Value+" + "Zq8vN2kR5tW7yB4mC6pX1jL3" * 3


@pytest.mark.parametrize("width", [64, 76])
@pytest.mark.parametrize("prefix", [b"", b"u:", b"ab:", b"{\"token\": \""])
def test_known_secret_in_wrapped_base64(width, prefix):
    raw = base64.b64encode(prefix + LONG_SECRET.encode() + b"\" and more data after it}").decode()
    wrapped = "\n".join(raw[i:i + width] for i in range(0, len(raw), width))
    red = sp.Redactor([LONG_SECRET])
    for text in (wrapped, "  " + wrapped.replace("\n", "\n  "), json.dumps({"stdout": wrapped}),
                 json.dumps({"msg": json.dumps({"stdout": wrapped})})):  # \n, and \\n in JSON escaped twice
        out = red.redact_text(text)
        assert "[REDACTED:known_secret]" in out, out
        flat = re.sub(r"\\+n|\n| ", "", out)  # the line breaks, raw or escaped once or twice, taken out
        # No 16 characters of the secret's base64 (at any alignment) survive.
        for variant in sp._b64_variants(LONG_SECRET.encode()):
            for i in range(0, len(variant) - 16, 8):
                assert variant[i:i + 16] not in flat, (variant[i:i + 16], out)


def test_known_secret_in_double_escaped_json():
    value = 'dbl"Esc\\aped-s3cret'
    red = sp.Redactor([value])
    inner = json.dumps({"password": value})  # once: {"password": "dbl\"Esc\\aped-s3cret"}
    # twice: a JSON document inside a JSON string (an API error quoting its request, in a result's stdout)
    for text in (json.dumps({"stdout": inner}), json.dumps({"stdout": inner}, ensure_ascii=False), json.dumps(inner)):
        out = red.redact_text(text)
        assert "[REDACTED:known_secret]" in out and "s3cret" not in out, out


def test_known_secret_base64_url_encoded():
    value = "url>b64?secret~~value"  # its base64 has '+' and '/' ('Pj8', '+f')
    red = sp.Redactor([value])
    import urllib.parse

    encoded = urllib.parse.quote(base64.b64encode(value.encode()).decode(), safe="")
    assert "%2B" in encoded or "%2F" in encoded or "%3D" in encoded
    out = red.redact_text(f"https://api.example/cb?auth={encoded}&x=1")
    assert encoded not in out and "[REDACTED:known_secret]" in out, out


def test_known_hex_secret_standing_alone_is_removed(tmp_path):
    """A token made with `openssl rand -hex 32` has the shape of a digest; known, it goes."""
    red = sp.Redactor()
    red.add_known_from_mapping({"API_TOKEN": HEX64})
    assert red.redact_text(f"echo {HEX64}") == "echo [REDACTED:known_secret]"
    log = tmp_path / "hook.log"
    log.write_text(f"token {HEX64}\n")
    result = sp.scan_paths([str(log)], known_values=[HEX64])
    assert result["by_detector"] == {"known_secret": 1} and HEX64 not in json.dumps(result)


def test_hook_command_header_and_user_flag_fragments():
    command = ("curl -fsS -u deploy:Sh0rtPw -H 'X-Token: s3cr3tv' -H \"Authorization: Basic ZGVwbG95OnB3\" "
               "--header=X-Api-Key:k3yv4l -H 'Accept: application/json' https://api.example/x --key tokens/refresh; "
               "wget --user=ops:W9etPass; curl --proxy-user \"px:Pr0xyPw\"|cat")
    fragments = sp.command_fragments(command)
    for secret in ("Sh0rtPw", "deploy:Sh0rtPw", "s3cr3tv", "ZGVwbG95OnB3", "k3yv4l", "W9etPass", "Pr0xyPw"):
        assert secret in fragments, (secret, fragments)
    for readable in ("application/json", "https://api.example/x", "tokens/refresh", "deploy"):
        assert readable not in fragments, (readable, fragments)
    assert not [f for f in fragments if f[-1] in ";|\"'"], fragments  # shell syntax is not part of a value
    out = sp.Redactor(fragments).redact_text("HTTP/1.1 401\nX-Token: s3cr3tv rejected for deploy (Sh0rtPw)")
    assert "s3cr3tv" not in out and "Sh0rtPw" not in out and "deploy" in out


def test_known_values_sharing_prefixes_mask_the_longest_and_deep_prefix_chains_still_compile():
    """The known values are matched as a prefix tree (guard for the pattern the redactor builds)."""
    red = sp.Redactor(["prefix-secret", "prefix-secret-longer", "prefix-other1"])
    assert red.redact_text("a prefix-secret-longer b prefix-secret! c prefix-other1") == (
        "a [REDACTED:known_secret] b [REDACTED:known_secret]! c [REDACTED:known_secret]")
    words = ["x" * n for n in range(6, 1106)]  # 1100 nested prefixes: deeper than Python's recursion limit
    with pytest.raises(RecursionError):
        sp._trie(words, 0)
    assert sp._literals_pattern(words).search("y" + "x" * 1200 + "y").span() == (1, 1106)


def test_known_secret_wrapped_over_the_lines_of_a_stdout_lines_list():
    """A hook's stdout_lines / stdout_tail are one text: base64 wrapped over them is one value."""
    raw = base64.b64encode(b"admin:" + LONG_SECRET.encode()).decode()
    lines = ["before"] + [raw[i:i + 64] for i in range(0, len(raw), 64)] + ["after"]
    out = sp.Redactor([LONG_SECRET]).redact({"stdout_tail": lines, "stdout_lines": lines, "other": lines[1:2]})
    assert out["stdout_tail"] == out["stdout_lines"] == ["before", "YWRtaW46[REDACTED:known_secret]", "after"]
