# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the evidence callback learns as secret (controller only): the values of secret sources.

Private plugin_utils: the API may change without notice between releases.

A value is secret when it comes from a *secret source* (docs/evidence.md, "Redaction"):

- a variable, environment variable, fact or module argument whose name marks it secret
  (:func:`is_secret_name`), anywhere in a nested value under such a name;
- a vault-encrypted value: ``!vault`` strings, and every value loaded from a file that is
  vault-encrypted as a whole (``group_vars/all/vault.yml``, ``vars_files``, ``include_vars``);
- the output of a template expression that reads one: a lookup whose plugin is a secret store
  (``password``, ``unvault``, ``hashi_vault``, ``aws_secret``, ``aws_ssm``, ``passwordstore``, ...)
  or whose arguments name a secret (``lookup('ansible.builtin.env', 'MYSQL_PWD')``,
  ``lookup('pipe', 'vault kv get -field=password ...')``), ``ansible_env.DB_PASSWORD``, a variable
  or attribute whose name marks it secret (``item.password``) or a vaulted variable. Only what the
  expression produced is learnt, not the text around it: ``"https://{{ host }}/?t={{ token }}"``
  teaches the token;
- the secret fragments of command lines: variables named ``*_cmd``/``*command``, and task
  arguments so named (``rotation_hook``'s ``command``, a ``set_fact`` of ``rotation_stage_cmd``;
  not the ``cmd`` of every ``command``/``shell`` task, whose key ids and UUIDs would look generated).

The same rule is applied to variables (with the play's templar) and to task arguments and
``environment`` (their raw templates at task start, their rendered values in the task of the
result, ``no_log`` tasks included: their result is censored, the task still carries what it
was given). A ``no_log`` task's other arguments are not secret for being there: playbooks/rotate.yml
copies enclave URLs and measurements into facts under ``no_log``.
"""

from __future__ import annotations

import re

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.format import to_plain
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.secret_patterns import command_fragments, is_secret_name

# Variables holding a command line (hook commands): their secret fragments are learnt.
COMMAND_NAME = re.compile(r"(?:^|_)(?:cmd|command)$", re.IGNORECASE)
# Types of vault-encrypted values (ansible-core 2.19+, and before): their values are secret whatever the name.
_VAULT_TYPES = ("EncryptedString", "AnsibleVaultEncryptedUnicode")
_VAULT_HEADER = b"$ANSIBLE_VAULT;"
# Lookup plugins that read a secret store: what they return is secret whatever it is assigned to.
_SECRET_LOOKUP = re.compile(
    r"vault|secret|password|passwordstore|onepassword|bitwarden|keyring|cyberark|conjur|credential|ssm|keyvault|(?:^|_)pass$",
    re.IGNORECASE)
_LOOKUP_CALL = re.compile(r"\b(?:lookup|query|q)\(\s{0,8}['\"]([A-Za-z0-9_.]{1,128})['\"]")
_QUOTED = re.compile(r"['\"]([^'\"\n]{1,256})['\"]")
# A name and the attributes read from it: item.password, hostvars['h'].api_token, ansible_env['X'].
# String literals are skipped ('token refresh failed' is text, not a variable), subscripts are not.
_CHAIN = re.compile(r"([A-Za-z_][A-Za-z0-9_]{0,127}(?:\.[A-Za-z_][A-Za-z0-9_]{0,127}|\[\s{0,8}['\"][^'\"\]\n]{1,128}['\"]\s{0,8}\])*)"
                    r"|'[^'\n]{0,1024}'|\"[^\"\n]{0,1024}\"")
_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}|['\"]([^'\"\]\n]{1,128})['\"]")
_MAX_ARG_DEPTH = 6


def _expressions(text: str):
    """(literal pieces, expression bodies) of a template, or None when it has blocks or comments
    (``{% %}``, ``{# #}``) or is not closed: then its output cannot be told from its text."""
    if "{%" in text or "{#" in text:
        return None
    literals, bodies, pos = [], [], 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            literals.append(text[pos:])
            return literals, bodies
        end = text.find("}}", start + 2)
        if end < 0:
            return None
        literals.append(text[pos:start])
        bodies.append(text[start + 2:end])
        pos = end + 2


_OPENING = re.compile(r"\{\{|\{%")


def _template_bodies(text: str) -> list:
    """The text of every ``{{ }}`` and ``{% %}`` of a template (one pass: linear in the text)."""
    bodies, pos = [], 0
    for opening in _OPENING.finditer(text):
        if opening.start() < pos:
            continue  # inside the previous body
        start = opening.end()
        end = text.find("}}" if opening.group(0) == "{{" else "%}", start)
        if end < 0:
            bodies.append(text[start:])
            break
        bodies.append(text[start:end])
        pos = end + 2
    return bodies


def expression_is_secret(body: str, secret_vars=()) -> bool:
    """Does this template expression read a secret source (see the module docstring)?"""
    for match in _LOOKUP_CALL.finditer(body):
        if _SECRET_LOOKUP.search(match.group(1).rsplit(".", 1)[-1]):
            return True
        close = body.find(")", match.end(), match.end() + 512)
        arguments = body[match.end(): close if close >= 0 else match.end() + 512]
        if any(is_secret_name(arg) for arg in _QUOTED.findall(arguments)):
            return True
    for chain in _CHAIN.finditer(body):
        if chain.group(1) is None:
            continue  # a string literal
        parts = [quoted or name for name, quoted in ((m.group(0), m.group(1)) for m in _PART.finditer(chain.group(1)))]
        if not parts:
            continue
        # The attribute read decides (rotation_key.key.allowed_measurements is not a key); a vaulted
        # or otherwise secret variable is secret through any of its attributes.
        if is_secret_name(parts[-1]) or parts[0] in secret_vars:
            return True
    return False


def template_is_secret(value, secret_vars=()) -> bool:
    return isinstance(value, str) and any(expression_is_secret(body, secret_vars) for body in _template_bodies(value))


def secret_outputs(raw: str, rendered, secret_vars=()) -> list:
    """The parts of ``rendered`` that the secret expressions of template ``raw`` produced: the
    value between the literal text around each ``{{ }}``; the whole value when that cannot be told."""
    if not template_is_secret(raw, secret_vars):
        return []
    if not isinstance(rendered, str):
        return _leaf_strings(rendered)
    parsed = _expressions(raw)
    if parsed is None:
        return [rendered]
    literals, bodies = parsed
    if not rendered.startswith(literals[0]) or not rendered.endswith(literals[-1]) or len(rendered) < len(literals[0]) + len(literals[-1]):
        return [rendered]
    out, pos, pending = [], len(literals[0]), []
    stop = len(rendered) - len(literals[-1])
    for i, body in enumerate(bodies):
        pending.append(body)
        literal = literals[i + 1]
        if i + 1 < len(bodies) and not literal:
            continue  # two expressions side by side: their outputs are one piece
        end = stop if i + 1 == len(bodies) else rendered.find(literal, pos, stop)
        if end < 0:
            return [rendered]
        if any(expression_is_secret(b, secret_vars) for b in pending):
            out.append(rendered[pos:end])
        pos, pending = end + len(literal), []
    return out


def _leaf_strings(value) -> list:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _leaf_strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _leaf_strings(v)]
    return []


try:  # ansible-core 2.19+: values carry the file they were loaded from
    from ansible._internal._datatag._tags import Origin as _Origin
except ImportError:  # pragma: no cover - older cores: ansible_pos
    _Origin = None


def _origin_path(value):
    """The file a variable's value was loaded from: the Origin tag (ansible-core 2.19+) or
    ``ansible_pos`` (older cores); None when unknown."""
    if _Origin is not None:
        try:
            origin = _Origin.get_tag(value)
        except Exception:  # an internal API: never let it stop the recording
            origin = None
        if origin is not None and origin.path:
            return origin.path
    pos = getattr(value, "ansible_pos", None)
    return pos[0] if isinstance(pos, tuple) and pos and isinstance(pos[0], str) else None


class SecretLearner:
    """Feeds a :class:`Redactor` the values of secret sources, as the run reveals them."""

    def __init__(self, redactor):
        self.redactor = redactor
        # Variables that are secret whatever their name (vaulted, or templates reading a secret
        # source): a template that reads one is a secret source too.
        self.secret_vars = set()
        self._encrypted = {}
        self._task_args = {}
        self._roles_seen = set()

    # ------------------------------------------------------------------ primitives
    def encrypted_file(self, path) -> bool:
        """Is ``path`` a file vault-encrypted as a whole (cached per path)?"""
        if not isinstance(path, str) or not path:
            return False
        if path not in self._encrypted:
            try:
                with open(path, "rb") as handle:
                    self._encrypted[path] = handle.read(len(_VAULT_HEADER)) == _VAULT_HEADER
            except OSError:
                self._encrypted[path] = False
        return self._encrypted[path]

    def vaulted(self, value) -> bool:
        return type(value).__name__ in _VAULT_TYPES or self.encrypted_file(_origin_path(value))

    def mapping(self, mapping):
        """Secret-named entries (nested too) and the secret fragments of command variables."""
        if not isinstance(mapping, dict):
            return
        self.redactor.add_known_from_mapping(mapping)
        for name, value in mapping.items():
            if isinstance(name, str) and COMMAND_NAME.search(name) and isinstance(value, str):
                self.redactor.add_known(command_fragments(value))

    # ------------------------------------------------------------------ variables
    def variables(self, variables, templar=None):
        """One variable source: vaulted values (any name), secret-named values, command fragments;
        templated values rendered with ``templar`` when they are secret-named, commands, or read
        a secret source (then what the secret expressions produced is learnt)."""
        plain = {}
        for name, value in variables.items():
            if not isinstance(name, str):
                continue
            try:
                if type(value).__name__ in _VAULT_TYPES:
                    self.secret_vars.add(name)
                    self.redactor.add_known([str(value)])
                    continue
                if self.encrypted_file(_origin_path(value)):
                    self.secret_vars.add(name)
                    self.redactor.add_known(_leaf_strings(to_plain(value)))
                    continue
            except Exception:  # a vault that cannot be opened here: Ansible reports it where it is used
                continue
            named = is_secret_name(name) or bool(COMMAND_NAME.search(name))
            if isinstance(value, str) and ("{{" in value or "{%" in value):
                source = template_is_secret(value, self.secret_vars)
                if source:
                    self.secret_vars.add(name)
                if templar is None or not (named or source):
                    continue
                try:
                    rendered = templar.template(value)
                except Exception:  # undefined or failing expressions: nothing to learn
                    continue
                if source:
                    self.redactor.add_known(secret_outputs(value, to_plain(rendered), self.secret_vars))
                value = rendered
            if named:
                plain[name] = to_plain(value)
        self.mapping(plain)

    def play_vars(self, play):
        """Literal play vars by name, and templated ones rendered with every variable of the play."""
        try:
            play_vars = dict(play.vars or {})
        except Exception:
            return
        self.mapping(to_plain(play_vars))
        templated = {k: v for k, v in play_vars.items() if isinstance(v, str) and "{{" in v
                     and (is_secret_name(k) or template_is_secret(v, self.secret_vars))}
        if not templated:
            return
        try:
            from ansible.template import Templar

            all_vars = play.get_variable_manager().get_vars(play=play)
            templar = Templar(loader=getattr(play, "_loader", None), variables=all_vars)
        except Exception:
            return
        self.variables(templated, templar)

    def inventory(self, play, max_hosts: int = 1000):
        """Every variable source the play sees for each inventory host (up to ``max_hosts``): inventory
        files, group_vars and host_vars (vault-encrypted ones too), play vars and vars_files, roles of the play."""
        try:
            from ansible.template import Templar

            manager = play.get_variable_manager()
            # .hosts, not get_hosts(): the play's batch restricts what get_hosts() returns.
            hosts = list(manager._inventory.hosts.values())[:max_hosts] or [None]
            loader = getattr(play, "_loader", None)
        except Exception:
            return
        for host in hosts:
            try:
                variables = manager.get_vars(play=play, host=host, include_hostvars=False)
            except Exception:
                continue
            self.variables(variables, Templar(loader=loader, variables=variables))

    def task_role(self, task):
        """vars and defaults of a task's role the first time one of its tasks starts (include_role included)."""
        role = getattr(task, "_role", None)
        if role is None or id(role) in self._roles_seen:
            return
        self._roles_seen.add(id(role))
        self.role(role)

    def role(self, role):
        for getter in ("get_default_vars", "get_vars"):
            try:
                self.variables(dict(getattr(role, getter)()))
            except Exception:
                continue

    # ------------------------------------------------------------------ tasks
    def task_start(self, task):
        """Remember which arguments (and ``environment`` entries) of ``task`` are secret: by name,
        as a command, or by what their template reads."""
        uuid = getattr(task, "_uuid", None)
        if uuid is None or uuid in self._task_args:
            return
        paths = {}
        self._secret_args(to_plain(_task_inputs(task)), (), paths, False, False)
        self._task_args[uuid] = paths

    def _secret_args(self, value, path, out, named, command):
        if len(path) > _MAX_ARG_DEPTH:
            return
        if isinstance(value, dict):
            for key, item in value.items():
                self._secret_args(item, path + (key,), out, named or is_secret_name(key),
                                  command or (key != "cmd" and bool(COMMAND_NAME.search(key))))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self._secret_args(item, path + (index,), out, named, command)
        elif isinstance(value, str) and (named or command or template_is_secret(value, self.secret_vars)):
            if "{{" in value or "{%" in value:
                out[path] = (value, named, command)  # learnt once rendered, from the task of the result
            else:
                self.redactor.add_known([value] if named else [])
                self.redactor.add_known(command_fragments(value) if command else [])

    def result(self, data, task):
        """What a task's result reveals: facts and module arguments set under secret names, every
        fact read from a vault-encrypted file (include_vars), and the rendered value of each secret
        argument (the task of a result carries its arguments rendered, no_log tasks included)."""
        facts = data.get("ansible_facts") if hasattr(data, "get") else None
        if isinstance(facts, dict):
            files = data.get("ansible_included_var_files") or []
            if any(self.encrypted_file(str(f)) for f in files if isinstance(f, str)):
                self.secret_vars.update(k for k in facts if isinstance(k, str))
                self.redactor.add_known(_leaf_strings(to_plain(facts)))
            else:
                self.redactor.add_known_from_mapping(to_plain(facts))
        invocation = data.get("invocation") if hasattr(data, "get") else None
        if isinstance(invocation, dict) and isinstance(invocation.get("module_args"), dict):
            self.redactor.add_known_from_mapping(to_plain(invocation["module_args"]))
        paths = self._task_args.get(getattr(task, "_uuid", None))
        if not paths:
            return
        rendered = to_plain(_task_inputs(task))
        for path, (raw, named, command) in paths.items():
            value = _at(rendered, path)
            if value is None or value == raw:
                continue  # not rendered here (the final result of a loop carries the templates)
            if named:
                self.redactor.add_known(_leaf_strings(value))
            if command:
                for text in _leaf_strings(value):
                    self.redactor.add_known(command_fragments(text))
            self.redactor.add_known(secret_outputs(raw, value, self.secret_vars))
            if isinstance(facts, dict) and len(path) == 2 and path[0] == "args" and path[1] in facts:  # set_fact: the fact is the value
                self.redactor.add_known(secret_outputs(raw, to_plain(facts[path[1]]), self.secret_vars))


def _task_inputs(task) -> dict:
    """A task's arguments and its ``environment`` (a list of mappings), under one root."""
    inputs = {"args": getattr(task, "args", None) or {}}
    environment = getattr(task, "environment", None)
    if environment:
        inputs["environment"] = environment if isinstance(environment, list) else [environment]
    return inputs


def _at(value, path):
    for part in path:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            return None
    return value
