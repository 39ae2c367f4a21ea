# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 22 item 10: the evidence callback treats the value of every variable from a secret
source as a secret, not only values under secret names: env lookups of secret names, secret
lookups, vault-encrypted files, credential-type injected variables, task arguments (no_log too)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultSecret
from ansible.playbook.task import Task

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.secret_patterns import Redactor, is_secret_name
from ansible_collections.alfred.tee_kms.plugins.plugin_utils import _evidence_secrets as es

REPO = Path(__file__).resolve().parents[4]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("template", [
    "{{ lookup('ansible.builtin.env', 'MYSQL_PWD') }}",
    "{{ lookup('env', 'DB_PASS') | default('x') }}",
    "{{ query('ansible.builtin.password', '/tmp/pw length=20') | first }}",
    "{{ lookup('community.hashi_vault.hashi_vault', 'kv/data/app:value') }}",
    "{{ lookup('amazon.aws.aws_ssm', '/app/db') }}",
    "{{ lookup('ansible.builtin.unvault', 'files/blob.vault') }}",
    "{{ lookup('ansible.builtin.pipe', 'vault kv get -field=password kv/app') }}",
    "{{ ansible_env.DB_PASSWORD }}",
    "{{ ansible_facts['env']['API_TOKEN'] }}",
    "{{ item.password }}",
    "{{ hostvars['enclave-1']['api_token'] | b64encode }}",
    "https://{{ host }}/?x={{ db_pass | urlencode }}",
    "{% if deploy_key %}{{ deploy_key }}{% endif %}",
    "{{ settings.endpoint }}",  # settings is vaulted (secret_vars below)
], ids=["env_mysql_pwd", "env_db_pass", "password_lookup", "hashi_vault", "aws_ssm", "unvault", "pipe_naming_password",
        "ansible_env", "ansible_facts_env", "item_attribute", "hostvars_subscript", "inside_text", "block", "vaulted_var"])
def test_templates_reading_a_secret_source_are_secret(template):
    assert es.template_is_secret(template, {"settings"}) is True


@pytest.mark.parametrize("template", [
    "{{ lookup('ansible.builtin.env', 'KMS_KEY_ID') }}",
    "{{ tee_kms_key_inputs.rotation_stage_cmd | default(lookup('ansible.builtin.env', 'ALFRED_ROTATION_STAGE_CMD')) }}",
    "{{ rotation_key.key.allowed_measurements | join(', ') }}",
    "{{ 'token refresh failed' if failed else 'ok' }}",
    "password: {{ kms_key_id }}",
    "{{ lookup('ansible.builtin.file', 'trust.yml') | from_yaml }}",
    "no template, password=literal",
], ids=["env_key_id", "hook_command_var", "registered_key_attribute", "string_literal", "literal_text", "file", "plain"])
def test_templates_not_reading_a_secret_source_are_not(template):
    assert es.template_is_secret(template) is False


def test_only_what_secret_expressions_produced_is_learnt():
    raw = "https://{{ host }}/cb?t={{ lookup('env', 'API_TOKEN') }}&v={{ version }}"
    assert es.secret_outputs(raw, "https://api.example/cb?t=Tok-123456&v=2") == ["Tok-123456"]
    # side by side: one piece; blocks or an output that does not fit the text: the whole value
    assert es.secret_outputs("{{ user }}{{ db_pass }}", "appPw-99887") == ["appPw-99887"]
    assert es.secret_outputs("{% if 1 %}{{ db_pass }}{% endif %}", "Pw-445566") == ["Pw-445566"]
    assert es.secret_outputs("x={{ db_pass }};", "something else") == ["something else"]
    assert es.secret_outputs("{{ db_creds }}", {"a": ["Pw-1-aaaa", 3]}) == ["Pw-1-aaaa"]
    assert es.secret_outputs("{{ version }}", "2") == []


def _vault_file(tmp_path, text):
    password = tmp_path / "pass"
    password.write_text("unit-vault-password\n")
    path = tmp_path / "vault.yml"
    path.write_text(text)
    subprocess.run([str(BIN / "ansible-vault"), "encrypt", "--vault-password-file", str(password), str(path)],
                   check=True, capture_output=True)
    loader = DataLoader()
    loader.set_vault_secrets([("default", VaultSecret(b"unit-vault-password"))])
    return loader, path


def test_every_value_of_a_file_vault_encrypted_whole_is_secret(tmp_path):
    loader, path = _vault_file(tmp_path, "---\ndb_conn: WholeFile-1234\nnested:\n  inner: [NestedWhole-5678]\n")
    plain = tmp_path / "plain.yml"
    plain.write_text("---\nregion: PlainValue-9012\n")
    learner = es.SecretLearner(Redactor())
    learner.variables(dict(loader.load_from_file(str(path)), **loader.load_from_file(str(plain))))
    assert learner.secret_vars == {"db_conn", "nested"}
    out = learner.redactor.redact_text("WholeFile-1234 NestedWhole-5678 PlainValue-9012")
    assert out == "[REDACTED:known_secret] [REDACTED:known_secret] PlainValue-9012"
    # and what include_vars reads from it
    learner = es.SecretLearner(Redactor())
    learner.result({"ansible_facts": {"db_conn": "WholeFile-1234"}, "ansible_included_var_files": [str(path)]}, None)
    assert learner.redactor.redact_text("WholeFile-1234") == "[REDACTED:known_secret]"


def _trusted(text):
    """A template as a variable file gives it (ansible-core 2.19 renders only trusted templates)."""
    try:
        from ansible.template import trust_as_template
    except ImportError:  # pragma: no cover - ansible-core before 2.19 renders every string
        return text
    return trust_as_template(text)


def test_variables_from_secret_sources_under_any_name(monkeypatch):
    from ansible.template import Templar

    monkeypatch.setenv("MYSQL_PWD", "EnvPwd-unit-1")
    variables = {"db_login": _trusted("{{ lookup('env', 'MYSQL_PWD') }}"),  # the FQCN needs the collection loader
                 "region": _trusted("{{ lookup('env', 'HOME') }}"),
                 "dsn": _trusted("host=db user=app extra={{ db_pass | upper }}"), "db_pass": "lower-pass-1"}
    learner = es.SecretLearner(Redactor())
    learner.variables(variables, Templar(loader=DataLoader(), variables=variables))
    assert {"db_login", "dsn"} <= learner.secret_vars and "region" not in learner.secret_vars
    out = learner.redactor.redact_text("EnvPwd-unit-1 LOWER-PASS-1 lower-pass-1 host=db")
    assert out == "[REDACTED:known_secret] [REDACTED:known_secret] [REDACTED:known_secret] host=db"


def test_a_password_lookup_in_a_variable_is_rendered_once_and_its_value_learnt(tmp_path):
    """The side effect docs/evidence.md names: rendered at play start, the lookup creates its file."""
    from ansible.template import Templar

    path = tmp_path / "generated"
    variables = {"app_login": _trusted("{{ lookup('password', '%s length=18 chars=ascii_letters,digits') }}" % path)}
    learner = es.SecretLearner(Redactor())
    learner.variables(variables, Templar(loader=DataLoader(), variables=variables))
    generated = path.read_text().split()[0]
    assert len(generated) == 18 and learner.redactor.redact_text(f"login {generated}") == "login [REDACTED:known_secret]"


def _task(args, environment=None, no_log=False):
    data = {"name": "t", "action": "ansible.builtin.set_fact", "args": args, "no_log": no_log}
    if environment:
        data["environment"] = environment
    return Task.load(data, loader=DataLoader())


def test_task_arguments_and_environment_of_secret_sources_learnt_from_the_rendered_task():
    raw = _task({"ops_token": "{{ 'NoLog' ~ 'Tok-1' }}", "url": "https://{{ h }}/?k={{ lookup('env', 'API_KEY') }}",
                 "region": "{{ r }}", "nested": {"db_password": "Literal-Pw-2"}},
                environment={"DEPLOY_PASS": "{{ p }}", "REGION": "{{ r }}"}, no_log=True)
    learner = es.SecretLearner(Redactor())
    learner.task_start(raw)
    assert learner.redactor.redact_text("Literal-Pw-2") == "[REDACTED:known_secret]"  # literal: known at once
    rendered = raw.copy()
    rendered._uuid = raw._uuid
    rendered.args = {"ops_token": "NoLogTok-1", "url": "https://api.example/?k=ApiKey-777", "region": "eu-west-1",
                     "nested": {"db_password": "Literal-Pw-2"}}
    rendered.environment = [{"DEPLOY_PASS": "EnvKw-Pass-3", "REGION": "eu-west-1"}]
    learner.result({}, rendered)  # a no_log result: censored, its task still rendered
    out = learner.redactor.redact_text("NoLogTok-1 ApiKey-777 EnvKw-Pass-3 eu-west-1 https://api.example/?k=")
    assert out == "[REDACTED:known_secret] " * 3 + "eu-west-1 https://api.example/?k="


def test_the_cmd_of_a_command_task_is_not_a_hook_command_but_rotation_hook_command_is():
    """Generated-looking ids in an ordinary command (a KMS key ARN) stay readable; a hook's are learnt."""
    arn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    learner = es.SecretLearner(Redactor())
    learner.task_start(Task.load({"action": "ansible.builtin.command", "args": {"cmd": f"aws kms describe-key --key-id {arn}"}},
                                 loader=DataLoader()))
    learner.task_start(Task.load({"action": "alfred.tee_kms.rotation_hook",
                                  "args": {"name": "stage", "command": "deploy --token Zq8vN2kR5tW7yB4mC6pX"}}, loader=DataLoader()))
    assert learner.redactor.redact_text(f"{arn} Zq8vN2kR5tW7yB4mC6pX") == f"{arn} [REDACTED:known_secret]"


def _injected_env(path: Path):
    """(env var, whether its injector renders a secret input directly) for a credential type file."""
    doc = yaml.safe_load(re.sub(r"!unsafe ", "", path.read_text()))
    inputs = [v for k, v in doc.items() if k.endswith("_inputs")][0]
    injectors = [v for k, v in doc.items() if k.endswith("_injectors")][0]
    secret_fields = {f["id"] for f in inputs["fields"] if f.get("secret")}
    for name, template in injectors.get("env", {}).items():
        # tower.filename.<id>: the variable holds the path of a file with the secret, not the secret
        reads = set(re.findall(r"{{\s*([A-Za-z_]+)", template)) - {"tower"}
        yield name, bool(reads & secret_fields)


# Environment variables AWX's own credential types inject (Machine, Network, AWS, Azure, GCE,
# Vault, OpenStack, VMware, Satellite, RHV, Insights, Controller, GitHub/GitLab tokens).
AWX_BUILTIN_SECRET_ENV = ["ANSIBLE_NET_PASSWORD", "ANSIBLE_NET_AUTH_PASS", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN",
                          "AWS_SESSION_TOKEN", "AZURE_SECRET", "AZURE_PASSWORD", "AZURE_CLIENT_SECRET", "GCE_CREDENTIALS_FILE_PATH",
                          "VAULT_TOKEN", "VMWARE_PASSWORD", "FOREMAN_PASSWORD", "OVIRT_PASSWORD", "INSIGHTS_PASSWORD",
                          "CONTROLLER_PASSWORD", "CONTROLLER_OAUTH_TOKEN", "TOWER_PASSWORD", "GITHUB_TOKEN", "GITLAB_TOKEN"]


def test_credential_type_injected_variables_are_secret_sources():
    """Every variable a credential type injects from a secret input is a secret source: by its
    name, or as a hook command (whose secret fragments are learnt)."""
    injected = []
    for name in ("awx_credential_type.yml", "awx_vault_credential_type.yml"):
        injected += [env for env, secret in _injected_env(REPO / "playbooks" / "vars" / name) if secret]
    assert {"ALFRED_ROTATION_STAGE_CMD", "VAULT_TOKEN", "VAULT_SECRET_ID"} <= set(injected)
    for env in injected:
        assert is_secret_name(env) or es.COMMAND_NAME.search(env), env
    for env in AWX_BUILTIN_SECRET_ENV:
        if env.endswith("_FILE_PATH"):
            continue  # a path: the file holds the secret
        assert is_secret_name(env), env
