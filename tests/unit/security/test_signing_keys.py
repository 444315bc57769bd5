"""ES256 signing keys: loading, refusal of other key types, RFC 7638 key ids, key sets."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm

from usermgmt_server.adapters.security.signing_keys import KeySet, SigningKey, VerificationKey


def _private_pem(key: object, password: bytes | None = None) -> bytes:
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _rfc7638_thumbprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """Computed as RFC 7638 §3 spells it: required members in lexical order, no whitespace."""
    jwk = ECAlgorithm.to_jwk(public_key, as_dict=True)
    text = f'{{"crv":"{jwk["crv"]}","kty":"EC","x":"{jwk["x"]}","y":"{jwk["y"]}"}}'
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def test_generated_key_has_rfc7638_kid_and_public_jwk() -> None:
    key = SigningKey.generate()
    assert key.kid == _rfc7638_thumbprint(key.public_key)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", key.kid)
    jwk = key.public_jwk()
    expected = ECAlgorithm.to_jwk(key.public_key, as_dict=True)
    assert jwk == {
        "kty": "EC",
        "crv": "P-256",
        "x": expected["x"],
        "y": expected["y"],
        "kid": key.kid,
        "use": "sig",
        "alg": "ES256",
    }
    assert "d" not in jwk


def test_coordinates_with_leading_zero_bytes_keep_32_bytes() -> None:
    scalar = next(
        d
        for d in range(1, 100_000)
        if ec.derive_private_key(d, ec.SECP256R1()).public_key().public_numbers().x < 2**248
    )
    key = SigningKey(ec.derive_private_key(scalar, ec.SECP256R1()))
    assert len(base64.urlsafe_b64decode(key.public_jwk()["x"] + "=")) == 32
    assert key.kid == _rfc7638_thumbprint(key.public_key)


def test_generated_keys_differ() -> None:
    assert SigningKey.generate().kid != SigningKey.generate().kid


def test_load_from_pem_bytes_and_text() -> None:
    original = ec.generate_private_key(ec.SECP256R1())
    pem = _private_pem(original)
    from_bytes = SigningKey.from_pem(pem)
    from_text = SigningKey.from_pem(pem.decode())
    assert from_bytes.kid == from_text.kid == _rfc7638_thumbprint(original.public_key())


def test_load_from_pem_with_escaped_newlines() -> None:
    original = ec.generate_private_key(ec.SECP256R1())
    escaped = _private_pem(original).decode().strip().replace("\n", "\\n")
    assert SigningKey.from_pem(escaped).kid == _rfc7638_thumbprint(original.public_key())


def test_load_sec1_pem() -> None:
    original = ec.generate_private_key(ec.SECP256R1())
    sec1 = original.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert SigningKey.from_pem(sec1).kid == _rfc7638_thumbprint(original.public_key())


def test_load_encrypted_pem_with_password() -> None:
    original = ec.generate_private_key(ec.SECP256R1())
    pem = _private_pem(original, password=b"s3cret")
    assert SigningKey.from_pem(pem, password=b"s3cret").kid == _rfc7638_thumbprint(
        original.public_key()
    )
    with pytest.raises(ValueError, match="PEM private key"):
        SigningKey.from_pem(pem)


def test_load_from_pem_file(tmp_path: Path) -> None:
    original = SigningKey.generate()
    path = tmp_path / "signing.pem"
    path.write_bytes(original.private_pem())
    assert SigningKey.from_pem_file(path).kid == original.kid
    assert SigningKey.from_pem_file(str(path)).kid == original.kid


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read the signing key file"):
        SigningKey.from_pem_file(tmp_path / "absent.pem")


@pytest.mark.parametrize(
    "other_key",
    [
        lambda: ec.generate_private_key(ec.SECP384R1()),
        lambda: ec.generate_private_key(ec.SECP256K1()),
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ed25519.Ed25519PrivateKey.generate,
    ],
    ids=["p384", "secp256k1", "rsa", "ed25519"],
)
def test_keys_other_than_p256_are_refused(other_key: object) -> None:
    pem = _private_pem(other_key())  # type: ignore[operator]
    with pytest.raises(ValueError, match="P-256"):
        SigningKey.from_pem(pem)


def test_p384_key_object_is_refused() -> None:
    with pytest.raises(ValueError, match="P-256"):
        SigningKey(ec.generate_private_key(ec.SECP384R1()))


@pytest.mark.parametrize("text", ["", "not a key", "-----BEGIN PRIVATE KEY-----\nAAAA\n"])
def test_garbage_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="PEM private key"):
        SigningKey.from_pem(text)


def test_a_public_key_cannot_sign() -> None:
    with pytest.raises(ValueError):
        SigningKey.from_pem(_public_pem(ec.generate_private_key(ec.SECP256R1())))


def test_verification_key_from_public_pem() -> None:
    original = ec.generate_private_key(ec.SECP256R1())
    public = VerificationKey.from_pem(_public_pem(original))
    assert public.kid == _rfc7638_thumbprint(original.public_key())
    assert public.public_jwk()["kid"] == public.kid
    with pytest.raises(ValueError, match="P-256"):
        VerificationKey.from_pem(_public_pem(ec.generate_private_key(ec.SECP384R1())))


def test_key_set_looks_up_active_and_retired_keys() -> None:
    active, retired, stranger = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    key_set = KeySet(active, [retired.verification_key])
    assert key_set.active is active
    assert key_set.public_key(active.kid) is active.public_key
    assert key_set.public_key(retired.kid) is retired.public_key
    assert key_set.public_key(stranger.kid) is None
    assert key_set.kids == {active.kid, retired.kid}
    assert [jwk["kid"] for jwk in key_set.jwks()["keys"]] == [active.kid, retired.kid]


def test_key_set_ignores_duplicates() -> None:
    active = SigningKey.generate()
    key_set = KeySet(active, [active.verification_key, active])
    assert len(key_set.jwks()["keys"]) == 1
