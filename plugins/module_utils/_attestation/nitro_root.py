# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pinned AWS Nitro Enclaves root certificate (Root-G1), the default nitro trust anchor.

Private module_utils: the API may change without notice between releases.

This is a public trust anchor, published by AWS at
https://aws-nitro-enclaves.amazonaws.com/AWS_NitroEnclaves_Root-G1.zip (see "Verifying the
root of trust" in the AWS Nitro Enclaves user guide). CN aws.nitro-enclaves, valid 2019-10-28
to 2049-10-28. Its SHA-256 fingerprint is checked every time it is loaded, so an edit of the
PEM below can never silently change what the collection trusts.
"""

from __future__ import annotations

import functools

AWS_NITRO_ROOT_G1_SHA256 = "641A0321A3E244EFE456463195D606317ED7CDCC3C1756E09893F3C68F79BB5B"

AWS_NITRO_ROOT_G1_PEM = b"""\
-----BEGIN CERTIFICATE-----
MIICETCCAZagAwIBAgIRAPkxdWgbkK/hHUbMtOTn+FYwCgYIKoZIzj0EAwMwSTEL
MAkGA1UEBhMCVVMxDzANBgNVBAoMBkFtYXpvbjEMMAoGA1UECwwDQVdTMRswGQYD
VQQDDBJhd3Mubml0cm8tZW5jbGF2ZXMwHhcNMTkxMDI4MTMyODA1WhcNNDkxMDI4
MTQyODA1WjBJMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGQW1hem9uMQwwCgYDVQQL
DANBV1MxGzAZBgNVBAMMEmF3cy5uaXRyby1lbmNsYXZlczB2MBAGByqGSM49AgEG
BSuBBAAiA2IABPwCVOumCMHzaHDimtqQvkY4MpJzbolL//Zy2YlES1BR5TSksfbb
48C8WBoyt7F2Bw7eEtaaP+ohG2bnUs990d0JX28TcPQXCEPZ3BABIeTPYwEoCWZE
h8l5YoQwTcU/9KNCMEAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUkCW1DdkF
R+eWw5b6cp3PmanfS5YwDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMDA2kAMGYC
MQCjfy+Rocm9Xue4YnwWmNJVA44fA0P5W2OpYow9OYCVRaEevL8uO1XYru5xtMPW
rfMCMQCi85sWBbJwKKXdS6BptQFuZbT73o/gBh1qUxl/nNr12UO8Yfwr6wPLb+6N
IwLz3/Y=
-----END CERTIFICATE-----
"""


class PinnedRootError(RuntimeError):
    """The embedded root does not match its pinned fingerprint (the file was altered)."""


@functools.lru_cache(maxsize=1)
def load_root():
    """Return the pinned root as a cryptography Certificate, after checking its fingerprint."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    certificate = x509.load_pem_x509_certificate(AWS_NITRO_ROOT_G1_PEM)
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex().upper()
    if fingerprint != AWS_NITRO_ROOT_G1_SHA256:
        raise PinnedRootError(
            "Could not load the pinned AWS Nitro Enclaves root certificate: its SHA-256 fingerprint "
            f"{fingerprint} differs from the pinned {AWS_NITRO_ROOT_G1_SHA256}")
    return certificate
