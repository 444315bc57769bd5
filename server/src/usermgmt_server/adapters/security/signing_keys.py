"""ES256 (ECDSA P-256) signing keys, their RFC 7638 key ids, and the set used for verification."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ALGORITHM = "ES256"
_COORDINATE_BYTES = 32


class VerificationKey:
    """The public half of an ES256 key, identified by its RFC 7638 thumbprint (``kid``)."""

    def __init__(self, public_key: ec.EllipticCurvePublicKey) -> None:
        _require_p256(public_key)
        self.public_key = public_key
        self._jwk = _public_jwk_members(public_key)
        self.kid = _thumbprint(self._jwk)

    @classmethod
    def from_pem(cls, pem: bytes | str) -> VerificationKey:
        """Load a PEM public key (``-----BEGIN PUBLIC KEY-----``)."""
        try:
            key = serialization.load_pem_public_key(_pem_bytes(pem))
        except (ValueError, UnsupportedAlgorithm) as error:
            raise ValueError(f"not a PEM public key: {error}") from None
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError(_wrong_key_message(key))
        return cls(key)

    def public_jwk(self) -> dict[str, str]:
        """The public JWK with ``kid``, ``use`` and ``alg`` (for a JWKS document)."""
        return {**self._jwk, "kid": self.kid, "use": "sig", "alg": ALGORITHM}


class SigningKey:
    """An ES256 private key that signs access tokens.

    Load one with ``from_pem`` (PEM text, e.g. from an environment variable), ``from_pem_file``
    or make a fresh one with ``generate``. Keys on any curve other than P-256 are refused.
    """

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        _require_p256(private_key)
        self.private_key = private_key
        self.verification_key = VerificationKey(private_key.public_key())

    @classmethod
    def generate(cls) -> SigningKey:
        """A new random P-256 key."""
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, pem: bytes | str, password: bytes | None = None) -> SigningKey:
        """Load a PEM private key (PKCS#8 or SEC1), optionally encrypted with ``password``.

        Newlines written as the two characters ``\\n`` (common when a PEM is pasted into an
        environment variable) are accepted.
        """
        try:
            key = serialization.load_pem_private_key(_pem_bytes(pem), password=password)
        except (ValueError, TypeError, UnsupportedAlgorithm) as error:
            raise ValueError(f"not a usable PEM private key: {error}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(_wrong_key_message(key))
        return cls(key)

    @classmethod
    def from_pem_file(
        cls, path: str | os.PathLike[str], password: bytes | None = None
    ) -> SigningKey:
        """Load a PEM private key from a file."""
        try:
            pem = Path(path).read_bytes()
        except OSError as error:
            raise ValueError(f"cannot read the signing key file {path}: {error.strerror}") from None
        return cls.from_pem(pem, password)

    @property
    def kid(self) -> str:
        """The RFC 7638 thumbprint of the public key, sent as the JWT ``kid`` header."""
        return self.verification_key.kid

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half as a ``cryptography`` key object."""
        return self.verification_key.public_key

    def public_jwk(self) -> dict[str, str]:
        """The public JWK with ``kid``, ``use`` and ``alg`` (for a JWKS document)."""
        return self.verification_key.public_jwk()

    def private_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM (handle with care)."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


class KeySet:
    """The active signing key plus any older keys still accepted for verification.

    During a rotation every instance first lists the new public key, then switches the active
    key, and drops the old one once the longest-lived token signed with it has expired.
    """

    def __init__(
        self, active: SigningKey, extra: Iterable[VerificationKey | SigningKey] = ()
    ) -> None:
        self.active = active
        self._by_kid: dict[str, ec.EllipticCurvePublicKey] = {}
        self._jwks: list[dict[str, str]] = []
        for key in (active, *extra):
            if key.kid not in self._by_kid:
                self._by_kid[key.kid] = key.public_key
                self._jwks.append(key.public_jwk())

    def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        """The public key with this key id, or ``None``."""
        return self._by_kid.get(kid)

    @property
    def kids(self) -> frozenset[str]:
        """Every key id accepted for verification."""
        return frozenset(self._by_kid)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """A JWK Set document (RFC 7517) of every verification key."""
        return {"keys": [dict(jwk) for jwk in self._jwks]}


def _pem_bytes(pem: bytes | str) -> bytes:
    text = pem.decode("utf-8", "replace") if isinstance(pem, bytes) else pem
    if "\\n" in text and "\n" not in text.strip():
        text = text.replace("\\n", "\n")
    return text.strip().encode("utf-8")


def _require_p256(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> None:
    if not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(
            f"the signing key must be an EC P-256 (secp256r1) key for ES256, not {key.curve.name}"
        )


def _wrong_key_message(key: object) -> str:
    kind = type(key).__name__.lstrip("_").removesuffix("PrivateKey").removesuffix("PublicKey")
    return f"the signing key must be an EC P-256 (secp256r1) key for ES256, not a {kind} key"


def _public_jwk_members(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = key.public_numbers()
    return {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64url(numbers.x.to_bytes(_COORDINATE_BYTES, "big")),
        "y": _b64url(numbers.y.to_bytes(_COORDINATE_BYTES, "big")),
    }


def _thumbprint(members: dict[str, str]) -> str:
    """RFC 7638: SHA-256 of the required members, sorted, without whitespace."""
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
