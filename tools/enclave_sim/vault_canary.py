"""The canary endpoint with a Vault/OpenBao Transit key: the enclave logs in and decrypts itself.

    POST {url}/v1/kms/canary
    {"ciphertext_blob": "<base64 of the Transit ciphertext vault:v<n>:...>", "key_id": "<Transit key>",
     "encryption_context": {.., "tee_kms_purpose": "canary"}, "nonce": "<hex>"}
    -> 200 {"nonce": "<hex>", "proof": "<hex SHA-256(nonce bytes || plaintext)>", "kms_key_id": "<key>"}

What an enclave runtime does for a token: it asks its attestation service, inside the enclave, for
a login token (audience: the login audience, which its public document endpoint never issues,
lifetime a few seconds), logs in to the key's JWT role with it, and decrypts with the one-use
Vault token the login gives. Neither token leaves the enclave. Vault refusing the login or the
decrypt answers 502 with ``kms_error``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import urllib.error
import urllib.request

from kms_canary import CanaryError, parse_request

_KEY_NAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,126}[A-Za-z0-9_])?$")
TIMEOUT = 20


def is_vault_ciphertext(blob: bytes) -> bool:
    return blob.startswith(b"vault:v")


def transit_context(context: dict) -> str:
    """The encryption context as the collection's vault provider binds it (base64 of sorted compact JSON)."""
    text = json.dumps({str(k): str(v) for k, v in context.items()}, sort_keys=True, separators=(",", ":"))
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _post(vault_addr: str, path: str, payload: dict, token: str | None, what: str) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Vault-Token"] = token
    request = urllib.request.Request(f"{vault_addr.rstrip('/')}/v1/{path}", data=json.dumps(payload).encode("utf-8"),
                                     headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
            return json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            errors = "; ".join(json.loads(exc.read() or b"{}").get("errors") or [])
        except ValueError:
            errors = ""
        raise CanaryError(502, f"Vault refused this enclave's {what}: HTTP {exc.code} {errors}".strip(),
                          f"{what}_refused: {errors or exc.code}") from None
    except (OSError, ValueError) as exc:
        raise CanaryError(502, f"Vault could not be reached: {exc}") from None


def run_vault_canary(vault_addr: str, login_token_for, body, *, proof_nonce=None, jwt_mount="jwt", transit_mount="transit") -> dict:
    """Decrypt the canary through Vault as this enclave; ``login_token_for(key_id)`` mints the
    enclave's own login token. ``proof_nonce`` overrides the nonce the proof is bound to."""
    blob, context, nonce = parse_request(body)
    key_id = body.get("key_id")
    if not isinstance(key_id, str) or not _KEY_NAME.match(key_id):
        raise CanaryError(400, "a Vault canary needs key_id, the Transit key name")
    login = _post(vault_addr, f"auth/{jwt_mount}/login", {"role": f"tee-kms-{key_id}", "jwt": login_token_for(key_id)}, None, "login")
    token = (login.get("auth") or {}).get("client_token")
    if not token:
        raise CanaryError(502, "Vault answered the login without a client token", "login_refused: no client token")
    answer = _post(vault_addr, f"{transit_mount}/decrypt/{key_id}",
                   {"ciphertext": blob.decode("ascii", "replace"), "context": transit_context(context)}, token, "decrypt")
    try:
        plaintext = base64.b64decode((answer.get("data") or {}).get("plaintext") or "", validate=True)
    except ValueError:
        raise CanaryError(502, "Vault answered the decrypt with a plaintext that is not base64") from None
    bound = proof_nonce if proof_nonce is not None else nonce
    return {"nonce": nonce.hex(), "proof": hashlib.sha256(bound + plaintext).hexdigest(), "kms_key_id": key_id}
