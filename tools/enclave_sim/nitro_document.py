"""AWS Nitro Enclaves attestation documents (untagged COSE_Sign1, ES384) signed by the sim chain.

Layout follows the AWS Nitro Enclaves NSM API documentation and the genuine vectors in
../shared/testvectors/nitro/: protected header {1: -35}, empty unprotected map, CBOR payload
with text keys, signature raw r||s over the COSE Sig_structure (RFC 9052 section 4.4).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from sim_trust import TrustMaterial, issue_certificate

PCR_COUNT = 16
PCR_LENGTH = 48
# AWS leaves live about 3 hours from the moment the enclave asks the NSM for a document.
LEAF_LIFETIME = dt.timedelta(hours=3)
# Reissue a cached leaf before it gets close to expiry, so a verifier checking "now" passes.
_LEAF_MIN_REMAINING = dt.timedelta(minutes=15)
_PROTECTED_HEADER = cbor2.dumps({1: -35})  # alg: ES384


def pcr0_for(measurement: str) -> bytes:
    """PCR0 = the measurement itself when it is a SHA-384 hex digest, else its SHA-384."""
    if len(measurement) == 2 * PCR_LENGTH:
        try:
            return bytes.fromhex(measurement)
        except ValueError:
            pass
    return hashlib.sha384(measurement.encode("utf-8")).digest()


def pcrs_for(measurement: str, *, debug: bool) -> dict[int, bytes]:
    """All 16 PCRs. Debug enclaves report zeros everywhere, as real Nitro debug mode does."""
    if debug:
        return {i: bytes(PCR_LENGTH) for i in range(PCR_COUNT)}
    pcr0 = pcr0_for(measurement)
    # Other PCRs derive from PCR0 so enclaves with one image agree, and are never zero.
    pcrs = {0: pcr0}
    for i in range(1, PCR_COUNT):
        pcrs[i] = hashlib.sha384(b"alfred-enclave-sim/pcr%d/" % i + pcr0).digest()
    return pcrs


def module_id_for(enclave_name: str) -> str:
    digest = hashlib.sha256(enclave_name.encode("utf-8")).hexdigest()
    return f"i-0sim{digest[:12]}-enc{digest[12:28]}"


def _raw_ecdsa_signature(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    # COSE wants fixed-size r||s (RFC 9053 section 2.1), not the DER that cryptography returns.
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA384())))
    return r.to_bytes(48, "big") + s.to_bytes(48, "big")


class NitroDocumentIssuer:
    """Plays the Nitro Secure Module of every enclave in the process."""

    def __init__(self, trust: TrustMaterial) -> None:
        self._trust = trust
        self._lock = threading.Lock()
        # enclave name -> (leaf private key, leaf certificate). Issued lazily so a fleet of
        # hundreds of enclaves starts at once and only pays for the leaves it uses.
        self._leaves: dict[str, tuple[ec.EllipticCurvePrivateKey, object]] = {}

    def _leaf_for(self, enclave_name: str, doc_time: dt.datetime):
        now = dt.datetime.now(dt.timezone.utc)
        with self._lock:
            cached = self._leaves.get(enclave_name)
            if cached is not None:
                cert = cached[1]
                if (cert.not_valid_before_utc <= doc_time
                        and now + _LEAF_MIN_REMAINING <= cert.not_valid_after_utc):
                    return cached
            key = ec.generate_private_key(ec.SECP384R1())
            # Valid from just before the document's time: a stale document then still chains
            # at its own timestamp and fails on age, which is what `stale` should exercise.
            not_before = doc_time.replace(microsecond=0) - dt.timedelta(seconds=60)
            cert = issue_certificate(
                subject=module_id_for(enclave_name) + ".sim.aws",
                public_key=key.public_key(),
                issuer_cert=self._trust.intermediate_cert,
                issuer_key=self._trust.intermediate_key,
                not_before=not_before, not_after=not_before + LEAF_LIFETIME,
                ca=False, path_length=None,
            )
            self._leaves[enclave_name] = (key, cert)
            return key, cert

    def build(self, *, enclave_name: str, measurement: str, timestamp_ms: int,
              nonce: bytes | None, debug: bool = False, rogue_signature: bool = False,
              public_key: bytes | None = None) -> bytes:
        """Return the raw CBOR bytes of an untagged COSE_Sign1 attestation document.

        ``public_key``: DER SubjectPublicKeyInfo of the RSA key KMS encrypts its answers to
        (CiphertextForRecipient); AWS KMS refuses a Recipient document without one."""
        doc_time = dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.timezone.utc)
        leaf_key, leaf_cert = self._leaf_for(enclave_name, doc_time)
        payload = cbor2.dumps({
            "module_id": module_id_for(enclave_name),
            "digest": "SHA384",
            "timestamp": timestamp_ms,
            "pcrs": pcrs_for(measurement, debug=debug),
            "certificate": leaf_cert.public_bytes(serialization.Encoding.DER),
            # AWS order: root first, then intermediates towards the leaf.
            "cabundle": [
                self._trust.root_cert.public_bytes(serialization.Encoding.DER),
                self._trust.intermediate_cert.public_bytes(serialization.Encoding.DER),
            ],
            "public_key": public_key,
            "user_data": None,
            "nonce": nonce,
        })
        sig_structure = cbor2.dumps(["Signature1", _PROTECTED_HEADER, b"", payload])
        signer = self._trust.rogue_nitro_key if rogue_signature else leaf_key
        signature = _raw_ecdsa_signature(signer, sig_structure)
        return cbor2.dumps([_PROTECTED_HEADER, {}, payload, signature])
