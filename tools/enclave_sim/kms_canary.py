"""The canary endpoint: the enclave proves it can decrypt a controller-chosen ciphertext via KMS.

    POST {url}/v1/kms/canary
    {"ciphertext_blob": "<base64 KMS CiphertextBlob>", "encryption_context": {..}, "nonce": "<hex>"}
    -> 200 {"nonce": "<hex>", "proof": "<hex SHA-256(nonce bytes || plaintext)>", "kms_key_id": "<arn>"}

The enclave does what it does for a token: a fresh RSA key pair, a Nitro attestation document
carrying the public key (and the controller's nonce), ``kms:Decrypt`` with that document as
``Recipient``, then it opens ``CiphertextForRecipient`` with the private key. The plaintext
never leaves the enclave; the proof binds it to the controller's nonce, so an old answer
cannot be replayed. KMS refusing the enclave answers 502 with KMS's error code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib.util
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# The envelope reader is the collection's own (plain Python, no Ansible imports): the enclave
# and the controller read CiphertextForRecipient with the same code. Loaded by file path so
# the provider modules beside it never shadow anything in this process.
_SPEC = importlib.util.spec_from_file_location(
    "alfred_aws_recipient", Path(__file__).resolve().parents[2] / "plugins" / "module_utils" / "_kms" / "aws_recipient.py")
_ENVELOPE = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_ENVELOPE)
EnvelopeError, open_envelope = _ENVELOPE.EnvelopeError, _ENVELOPE.open_envelope

CANARY_PATH = "/v1/kms/canary"
RSA_BITS = 2048
# The canary endpoint decrypts canaries only: a ciphertext whose encryption context does not carry
# this entry is refused before the KMS is asked. Tokens are never encrypted under it, so whoever
# reaches the endpoint cannot use it as an oracle on real tokens (docs/attestation.md).
CANARY_CONTEXT = ("tee_kms_purpose", "canary")


class CanaryError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _new_pair() -> tuple:
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    return key, key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class _KeyPool:
    """Key pairs generated ahead by background threads, each handed out once.

    An RSA-2048 pair costs ~0.15 s of CPU; a burst of documents (a fleet check with a 1 s
    timeout) would otherwise queue behind its own key generation. Every document still gets
    a key nobody else ever saw."""

    def __init__(self, size: int = 16, workers: int = 2) -> None:
        self._size = size
        self._workers = workers
        self._ready: list = []
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        self._stopping = False
        self._threads: list = []

    def _fill(self) -> None:
        while True:
            self._wanted.wait()
            if self._stopping:
                return
            pair = _new_pair()
            with self._lock:
                self._ready.append(pair)
                if len(self._ready) >= self._size:
                    self._wanted.clear()

    def start(self, prefill: int) -> None:
        """Start the refill threads and wait until ``prefill`` pairs are ready."""
        with self._lock:
            if not self._threads:
                self._threads = [threading.Thread(target=self._fill, name=f"rsa-key-pool-{index}", daemon=True)
                                 for index in range(self._workers)]
                for thread in self._threads:
                    thread.start()
            self._wanted.set()
        while True:
            with self._lock:
                if len(self._ready) >= min(prefill, self._size):
                    return
            time.sleep(0.02)

    def take(self) -> tuple:
        with self._lock:
            pair = self._ready.pop() if self._ready else None
            self._wanted.set()
        return pair or _new_pair()

    def stop(self) -> None:
        """Stop making keys; the process then ends with os._exit (see enclave_sim.py), so a
        thread still inside OpenSSL is not waited for."""
        self._stopping = True
        self._wanted.set()


_POOL = _KeyPool()


def recipient_key() -> tuple:
    """A fresh key pair for one document: (private key, DER SubjectPublicKeyInfo)."""
    return _POOL.take()


def warm_up(prefill: int = 8) -> None:
    """Fill the key pool before the simulator says it is ready (about half a second)."""
    _POOL.start(prefill)


def shut_down() -> None:
    _POOL.stop()


def parse_request(body) -> tuple:
    if not isinstance(body, dict):
        raise CanaryError(400, "the canary request must be a JSON object")
    try:
        blob = base64.b64decode(body.get("ciphertext_blob") or "", validate=True)
        nonce = bytes.fromhex(body.get("nonce") or "")
    except (binascii.Error, ValueError, TypeError):
        raise CanaryError(400, "ciphertext_blob must be base64 and nonce hex") from None
    context = body.get("encryption_context") or {}
    if not blob or not 16 <= len(nonce) <= 1024 or not isinstance(context, dict) \
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in context.items()):
        raise CanaryError(400, "need a ciphertext_blob, a nonce of 16-1024 bytes and a string-to-string encryption_context")
    if context.get(CANARY_CONTEXT[0]) != CANARY_CONTEXT[1]:
        raise CanaryError(400, f"the canary endpoint decrypts canaries only: encryption_context must carry "
                          f"{CANARY_CONTEXT[0]}={CANARY_CONTEXT[1]}")
    return blob, context, nonce


def kms_client(endpoint: str, region: str):
    import boto3
    from botocore.config import Config

    return boto3.client("kms", region_name=region, endpoint_url=endpoint,
                        config=Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=5, read_timeout=20))


def run_canary(client, document_for, body, *, proof_nonce=None) -> dict:
    """Decrypt through KMS as this enclave; ``document_for(public_key_der, nonce)`` builds the
    enclave's attestation document. ``proof_nonce`` overrides the nonce the proof is bound to
    (mode wrong-nonce)."""
    from botocore.exceptions import BotoCoreError, ClientError

    blob, context, nonce = parse_request(body)
    private_key, public_der = recipient_key()
    document = document_for(public_der, nonce)
    try:
        answer = client.decrypt(CiphertextBlob=blob, EncryptionContext=context,
                                Recipient={"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": document})
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        raise CanaryError(502, f"KMS refused this enclave's decrypt: {code}", code) from None
    except BotoCoreError as exc:
        raise CanaryError(502, f"KMS could not be reached: {exc}") from None
    if answer.get("Plaintext") is not None or not answer.get("CiphertextForRecipient"):
        raise CanaryError(502, "KMS answered a Recipient request without CiphertextForRecipient")
    try:
        plaintext = open_envelope(answer["CiphertextForRecipient"], private_key)
    except EnvelopeError as exc:
        raise CanaryError(502, f"CiphertextForRecipient does not open: {exc}") from None
    bound = proof_nonce if proof_nonce is not None else nonce
    return {"nonce": nonce.hex(), "proof": hashlib.sha256(bound + plaintext).hexdigest(), "kms_key_id": answer.get("KeyId")}
