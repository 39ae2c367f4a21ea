# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What an attestation evidence format provides: the abstract base every format file implements.

Private module_utils: the API may change without notice between releases.

A format is a subclass of ``AttestationFormat`` in its own file (``alfred.py``, ``nitro.py``,
``jwt.py``), listed once in ``registry.py``. Everything that used to switch on a format's name
asks the registry for the class and reads what it declares:

- the dispatch (``common.py``): ``sniff`` (format detection), ``requirements``, ``verify``;
- the trust (``trust.py``): ``anchor_options``, ``check_options``, ``measurement_options`` (the
  trust fields and their argument spec), ``anchor`` (from which a key's trust derives the formats
  it accepts), ``has_builtin_root`` (a pinned root: no anchor needed), ``check_trust``;
- the live client (``client.py``) and the probes: ``echoes_challenge``, ``live_request``, ``bind``;
- the decrypt gate (``_kms/rules.py``): ``verify_request``, ``purpose_claim``;
- the modules: the choices of their format options are the registry's names.

Formats are classes, never instantiated: every member is a class attribute or a classmethod.
This file imports only ``model`` (and the standard library), like the format files, so the
registry imports the formats without an import cycle.
"""

from __future__ import annotations

import abc
import os

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.model import Evidence, VerifyOptions
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import InputError

TASK = "task"  # the trust of one attestation_verify task
KEY = "key"    # a trust kept with a key (kms_key, the decrypt gate, rotation_inputs)
MAX_FILE_BYTES = 4 * 1024 * 1024


def trust_error(context: str, cause: str) -> InputError:
    """The refusal of a trust, in the wording of its caller (``TASK`` or ``KEY``)."""
    if context == KEY:
        return InputError("configure attestation trust for", "key", cause)
    return InputError("validate", "attestation trust", cause)


def read_text_or_path(value: str, marker: str, what: str) -> bytes:
    """``value`` itself when it contains ``marker`` (PEM or JSON text), else the file it names."""
    if marker in value:
        return value.encode("utf-8")
    path = os.path.expanduser(value)
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_FILE_BYTES)
    except OSError as exc:
        raise InputError("read", f"{what} '{value}'", exc.strerror or exc.__class__.__name__) from None


class AttestationFormat(abc.ABC):
    """One evidence format. Subclasses set the attributes and implement ``sniff`` and ``verify``."""

    # The value of the ``format`` options and of ``Evidence.format``.
    name: str = ""
    # How ``detect_format`` names its documents when none is recognised ("a JWS (jwt)").
    description: str = ""
    # Libraries the verifier needs (``_common.deps``), checked before ``verify`` runs.
    requirements: tuple = ()

    # The trust fields the format reads, as Ansible argument specs, in three groups (a trust's
    # fields are all anchors first, then all claim checks, then what makes the measurement, so the
    # options read in that order whatever the format). ``anchor`` is the field whose presence in a
    # key's trust means the trust accepts this format; the other anchor options are alternatives
    # (jwt: ``jwks_url``, in an attestation_verify task only).
    anchor: str = ""
    anchor_options: dict = {}
    check_options: dict = {}
    measurement_options: dict = {}
    # Fields attestation_verify also takes as flat options (deprecated): only those that predate its
    # ``trust`` option. A new format leaves it empty: its fields exist only in a trust.
    flat_options: tuple = ()
    # A root pinned in the collection (nitro: AWS Nitro Enclaves Root-G1): the format verifies
    # without an anchor in the trust, but a key's trust accepts it only when it names it in ``formats``.
    has_builtin_root: bool = False

    # True: the enclave answers a challenge (``POST /v1/attestation/challenge``) and verification
    # checks the echo of what was sent (``VerifyOptions.request``). False: the document is fetched
    # from ``GET /v1/attestation/document?format=<name>&nonce=<hex>`` and bound through its nonce.
    echoes_challenge: bool = False
    # The ``Evidence.details`` entry that states the purpose the evidence was issued for (alfred:
    # ``operation_purpose``); None: the purpose is bound through the nonce (``rules.purpose_nonce``).
    purpose_claim: str | None = None

    @classmethod
    @abc.abstractmethod
    def sniff(cls, document: bytes) -> bool:
        """Whether the raw bytes look like a document of this format (no verification)."""

    @classmethod
    @abc.abstractmethod
    def verify(cls, document: bytes, options: VerifyOptions) -> Evidence:
        """The common verdict for one raw document; AttestationError naming the first failed check."""

    @classmethod
    def trust_options(cls) -> dict:
        """Every trust field of the format, anchors first."""
        return dict(cls.anchor_options, **cls.check_options, **cls.measurement_options)

    @classmethod
    def anchored(cls, trust: dict) -> bool:
        """Whether ``trust`` gives an anchor of this format (or the format needs none)."""
        return cls.has_builtin_root or any(trust.get(name) for name in cls.anchor_options)

    @classmethod
    def check_trust(cls, trust: dict, context: str) -> dict:
        """The trust with this format's own fields checked and normalised; raise ``trust_error(context, ...)``.

        The fields of alfred, nitro and jwt are checked by ``trust.validate`` (their order of checks
        and wording predate the registry); a new format checks its own here."""
        return trust

    @classmethod
    def live_request(cls, nonce: str, issued_at: int, window: int, operation_purpose: str) -> dict:
        """What the controller sends an enclave for fresh evidence bound to ``nonce``."""
        return {"nonce": nonce, "format": cls.name}

    @classmethod
    def bind(cls, attestation: dict, request: dict) -> dict:
        """A caller's attestation (``{format, document}``) with what binds it to ``request`` for the decrypt gate."""
        attestation["nonce"] = request["nonce"]
        return attestation

    @classmethod
    def verify_request(cls, request):
        """The request verification checks the echo of (``VerifyOptions.request``), or None."""
        return request if cls.echoes_challenge else None
