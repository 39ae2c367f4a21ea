# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/awx_configure.yml against the real awx.awx collection (fetched from the PyPI
`ansible` package by fetch_awx_collection.sh, no Galaxy) and against playbooks/rotate.yml.

No AWX server runs here: the playbook is syntax-checked and linted with awx.awx resolvable,
every awx.awx task's options are checked against the modules' own documentation, and the
credential type's injectors are rendered the way AWX renders them (sandboxed Jinja) and
compared with the variables rotate.yml reads.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.alfred.tee_kms.plugins.plugin_utils import _rotation_inputs as rotation_input_table
from jinja2.sandbox import ImmutableSandboxedEnvironment

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
AWX = REPO / ".cache" / "collections" / "ansible_collections" / "awx" / "awx"
PLAYBOOK = REPO / "playbooks" / "awx_configure.yml"
CREDENTIAL_TYPE = REPO / "playbooks" / "vars" / "awx_credential_type.yml"
HOOK_ENV = {f"ALFRED_ROTATION_{n}_CMD" for n in ("PREFLIGHT", "STAGE", "VALIDATE", "ROLLBACK")}


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def load(path: Path):
    return yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 - SafeLoader subclass


@pytest.fixture(scope="module")
def awx_collection():
    proc = subprocess.run([str(REPO / "tests" / "awx" / "fetch_awx_collection.sh"), str(BIN.parent)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (AWX / "MANIFEST.json").is_file()
    return AWX


@pytest.fixture(scope="module")
def lint_env(awx_collection):
    env = dict(os.environ)
    env.update({"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1", "NO_COLOR": "1",
                "ANSIBLE_COLLECTIONS_PATH": f"{REPO / '.collections'}:{REPO / '.cache' / 'collections'}",
                "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"})
    return env


def _documentation(source: str) -> dict:
    match = re.search(r"DOCUMENTATION = r?(\"\"\"|\'\'\')(.*?)\1", source, re.S)
    return yaml.safe_load(match.group(2))


def module_options(name: str) -> dict:
    """option -> spec of an awx.awx module, aliases included, plus its doc fragments' options (auth)."""
    doc = _documentation((AWX / "plugins" / "modules" / f"{name}.py").read_text())
    options = dict(doc["options"])
    fragments = doc.get("extends_documentation_fragment", [])
    for fragment in [fragments] if isinstance(fragments, str) else fragments:
        if fragment.startswith("awx.awx."):
            frag = _documentation((AWX / "plugins" / "doc_fragments" / f"{fragment.split('.')[2]}.py").read_text())
            options.update(frag.get("options", {}))
    for spec in list(options.values()):
        for alias in spec.get("aliases", []):
            options[alias] = spec
    return options


def awx_tasks() -> list[tuple[str, dict]]:
    play = load(PLAYBOOK)[0]
    found = []
    for task in play["tasks"]:
        for key, args in task.items():
            if key.startswith("awx.awx."):
                found.append((key.split(".")[2], args))
    return found


def play_vars() -> dict:
    play = load(PLAYBOOK)[0]
    data = dict(play["vars"])
    data.update(load(CREDENTIAL_TYPE))
    return data


# --- the playbook as Ansible and ansible-lint see it ------------------------------------------

def test_syntax_check_and_production_lint(lint_env):
    proc = subprocess.run([str(BIN / "ansible-playbook"), "--syntax-check", str(PLAYBOOK)], cwd=REPO, env=lint_env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = subprocess.run([str(BIN / "ansible-lint"), "--profile", "production", "--nocolor",
                           str(PLAYBOOK.relative_to(REPO)), str(CREDENTIAL_TYPE.relative_to(REPO)),
                           "execution-environment.yml", "meta/execution-environment.yml"],
                          cwd=REPO, env=lint_env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Profile 'production' was required, and it passed" in proc.stderr + proc.stdout


def test_every_awx_task_uses_options_the_module_has(awx_collection):
    tasks = awx_tasks()
    assert {name for name, dummy in tasks} >= {"execution_environment", "project", "credential_type", "credential",
                                               "job_template", "workflow_job_template", "schedule"}
    for name, args in tasks:
        options = module_options(name)
        unknown = set(args) - set(options)
        assert not unknown, f"awx.awx.{name}: unknown options {sorted(unknown)}"
        for option, value in args.items():
            choices = options[option].get("choices")
            if choices and isinstance(value, str) and "{{" not in value:
                assert value in choices, f"awx.awx.{name}: {option}={value!r} not in {choices}"
        if name == "workflow_job_template":
            node_spec = options["workflow_nodes"]["suboptions"]
            related = node_spec["related"]["suboptions"]
            for node in args["workflow_nodes"]:
                assert set(node) <= set(node_spec), set(node) - set(node_spec)
                assert set(node.get("related", {})) <= set(related)
    # Connection to AWX: the usual module_defaults of the controller group, from the environment.
    defaults = load(PLAYBOOK)[0]["module_defaults"]["group/awx.awx.controller"]
    assert "CONTROLLER_HOST" in defaults["controller_host"]
    assert "CONTROLLER_OAUTH_TOKEN" in defaults["controller_oauthtoken"]
    assert set(defaults) <= set(module_options("job_template"))
    runtime = yaml.safe_load((AWX / "meta" / "runtime.yml").read_text())
    assert {name for name, dummy in tasks} <= set(runtime["action_groups"]["controller"])


# --- the credential type against rotate.yml ---------------------------------------------------

def rotate_env_inputs() -> set[str]:
    """Environment variables rotate.yml reads as defaults: the input table's, and ALFRED_ENV (rotation_plan reads it)."""
    names = {name for item in rotation_input_table.INPUTS for name in item.env} | {"ALFRED_ENV"}
    return {n for n in names if not n.startswith("AWS_")}


def test_credentials_hold_only_secrets_injected_as_what_rotate_reads():
    data = load(CREDENTIAL_TYPE)
    fields = {f["id"]: f for f in data["tee_kms_awx_credential_type_inputs"]["fields"]}
    env = data["tee_kms_awx_credential_type_injectors"]["env"]
    # The hook commands and the signing key, plus ALFRED_ENV, which pins them to their environment.
    assert set(env) == HOOK_ENV | {"ALFRED_ENV", "ALFRED_EVIDENCE_SIGNING_KEY"}
    assert set(env) - {"ALFRED_EVIDENCE_SIGNING_KEY"} <= rotate_env_inputs()
    # What changes with every rotation is not a credential input (credential-admin rights, invisible in the job).
    assert not {"KMS_KEY_ID", "KMS_KEY_VERSION", "NEXT_KMS_KEY_VERSION", "KMS_ALLOWED_MEASUREMENTS"} & set(env)
    secret = {k for k, f in fields.items() if f.get("secret")}
    assert secret == {"preflight_cmd", "stage_cmd", "validate_cmd", "rollback_cmd", "evidence_signing_key"}
    assert set(fields) - secret == {"alfred_env"}
    # Every injector references only defined inputs (and AWX's tower.filename namespace).
    referenced = set()
    for template in list(env.values()) + list(data["tee_kms_awx_credential_type_injectors"]["file"].values()):
        referenced |= set(re.findall(r"\b([a-z_]+)\b", re.sub(r"\"[^\"]*\"|'[^']*'", "", template)))
    referenced -= {"if", "endif", "replace", "tower", "filename"}
    assert referenced <= set(fields), referenced - set(fields)
    assert data["tee_kms_awx_credential_type_inputs"]["required"] == ["alfred_env"]


def render_injectors(inputs: dict, key_file: str = "/runner/env/tmpkey") -> tuple[dict, dict]:
    """Render env and file injectors as AWX does (sandboxed Jinja; missing inputs are undefined)."""
    data = load(CREDENTIAL_TYPE)
    injectors = data["tee_kms_awx_credential_type_injectors"]
    sandbox = ImmutableSandboxedEnvironment()
    namespace = dict(inputs, tower={"filename": {"evidence_signing_key": key_file}})
    env = {k: sandbox.from_string(v).render(**namespace) for k, v in injectors["env"].items()}
    files = {k: sandbox.from_string(v).render(**namespace) for k, v in injectors["file"].items()}
    return env, files


def test_credential_injectors_render_the_runbook_environment():
    env, files = render_injectors({
        "alfred_env": "staging", "stage_cmd": "deploy --stage",
        "evidence_signing_key": "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",
    })
    assert env["ALFRED_ENV"] == "staging"
    assert env["ALFRED_ROTATION_STAGE_CMD"] == "deploy --stage" and env["ALFRED_ROTATION_ROLLBACK_CMD"] == ""
    assert env["ALFRED_EVIDENCE_SIGNING_KEY"] == "/runner/env/tmpkey"
    assert files["template.evidence_signing_key"].startswith("-----BEGIN PRIVATE KEY-----")
    # Without a signing key the variable stays empty: the bundle is unsigned, with no warning
    # about an unreadable (empty) key file.
    env, dummy = render_injectors({"alfred_env": "production"})
    assert env["ALFRED_EVIDENCE_SIGNING_KEY"] == "" and env["ALFRED_ENV"] == "production"


# --- job templates, workflow, schedule ----------------------------------------------------------

def test_job_templates_surveys_workflow_and_schedule():
    data = play_vars()
    rotate_vars = set(rotation_input_table.BY_NAME) | {"rotation_action"}  # what the role reads, by the playbook's names
    templates = {t["suffix"]: t for t in data["tee_kms_awx_job_templates"]}
    assert {k: (t["action"], t["job_type"]) for k, t in templates.items()} == {
        "preflight": ("preflight", "run"), "rehearsal": ("all", "check"), "rotate": ("all", "run"),
        "rollback": ("rollback", "run")}
    questions = data["tee_kms_awx_survey_questions"]
    rotation_inputs = {"kms_key_id", "kms_key_version", "next_kms_key_version", "kms_allowed_measurements"}
    for template in templates.values():
        assert {"env", "confirm_production", "show_commands", "kms_key_id"} <= set(template["questions"])
        for name in template["questions"]:
            question = questions[name]
            # every survey answer is a variable rotate.yml takes; multiple choices include its default
            assert question["variable"] in rotate_vars, question["variable"]
            if question["type"] == "multiplechoice":
                assert question["default"] in question["choices"]
    # The key, versions and allow-list are asked at every launch, required, with no default to reuse by mistake.
    for name in ("preflight", "rehearsal", "rotate"):
        assert rotation_inputs <= set(templates[name]["questions"])
    assert set(templates["rollback"]["questions"]) & rotation_inputs == {"kms_key_id"}  # rollback reads the snapshot
    for name in rotation_inputs:
        assert questions[name]["required"] is True and "default" not in questions[name]
    assert questions["env"]["choices"] == ["staging", "production"]
    assert questions["confirm_production"]["default"] == "false"
    # No demo default: the site names its image, repository, inventory and evidence volume.
    assert data["tee_kms_awx_extra_vars"] == {} and data["tee_kms_awx_ee_image"] == "" and data["tee_kms_awx_scm_url"] == ""
    assert data["tee_kms_awx_inventory_source_path"] == ""
    text = PLAYBOOK.read_text()
    assert "example.invalid" not in text and "inventories/demo" not in text and "attestation_trust" not in text

    tasks = dict(awx_tasks())
    workflow = tasks["workflow_job_template"]
    nodes = {n["identifier"]: n for n in workflow["workflow_nodes"]}
    assert set(nodes) == {"preflight", "rotate", "rollback"}
    prefix = data["tee_kms_awx_prefix"]

    def template_of(node):
        return node["unified_job_template"]["name"].replace("{{ tee_kms_awx_prefix }}", prefix)

    assert {k: template_of(n) for k, n in nodes.items()} == {k: f"{prefix} {k}" for k in nodes}
    assert nodes["preflight"]["related"]["success_nodes"] == [{"identifier": "rotate"}]
    assert nodes["rotate"]["related"]["failure_nodes"] == [{"identifier": "rollback"}]
    assert "success_nodes" not in nodes["rotate"]["related"] and "failure_nodes" not in nodes["preflight"]["related"]
    assert workflow["destroy_current_nodes"] is True
    # Workflow node credentials need ask_credential_on_launch on the job templates; launch-time extra vars
    # (the documented alternative to the survey) need ask_variables_on_launch.
    assert tasks["job_template"]["ask_credential_on_launch"] is True
    assert tasks["job_template"]["ask_variables_on_launch"] is True
    assert "kms_key_version" in workflow["survey_spec"]["spec"] and "kms_allowed_measurements" in workflow["survey_spec"]["spec"]

    schedule = tasks["schedule"]
    assert schedule["unified_job_template"] == "{{ tee_kms_awx_prefix }} rehearsal"
    assert "'env': 'staging'" in schedule["extra_data"] and "tee_kms_awx_rehearsal_inputs" in schedule["extra_data"]
    from dateutil.rrule import rrulestr

    rule = data["tee_kms_awx_rehearsal_rrule"]
    assert rule.startswith("DTSTART:") and " RRULE:" in rule  # AWX's format: DTSTART and RRULE on one line
    occurrences = rrulestr(rule.replace(" RRULE:", "\nRRULE:"))
    first = occurrences[0]
    assert (first.weekday(), first.hour, first.utcoffset().total_seconds()) == (0, 3, 0)


def test_requirements_file_names_the_fetched_release(awx_collection):
    """tests/awx/requirements.yml (for Galaxy users) and the fetch script give the same awx.awx."""
    import json

    wanted = yaml.safe_load((REPO / "tests" / "awx" / "requirements.yml").read_text())["collections"]
    fetched = json.loads((awx_collection / "MANIFEST.json").read_text())["collection_info"]
    assert wanted == [{"name": "awx.awx", "version": fetched["version"]}]


def test_configuring_without_the_site_settings_is_refused(lint_env, tmp_path):
    """The defaults name no image, repository, inventory or evidence volume: the play stops before any AWX call."""
    env = dict(lint_env, CONTROLLER_HOST="https://127.0.0.1:9", CONTROLLER_OAUTH_TOKEN="unused")
    proc = subprocess.run([str(BIN / "ansible-playbook"), str(PLAYBOOK), "-e", "tee_kms_awx_ee_image=registry.local/ee:1"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Could not configure AWX: set tee_kms_awx_ee_image" in proc.stdout
    assert "Register the execution environment" not in proc.stdout
