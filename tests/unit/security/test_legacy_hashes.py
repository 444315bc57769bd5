"""Hashes made by other systems: recognised by prefix, checked before import, verified in the pool
against published vectors, and always due for an Argon2id rehash."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import argon2
import pytest

from usermgmt_server.adapters.security.legacy_hashes import (
    BcryptScheme,
    DjangoPbkdf2Scheme,
    PasslibPbkdf2Scheme,
)
from usermgmt_server.adapters.security.passwords import Argon2Parameters, Argon2PasswordHasher

# Published vectors: Django's own test suite (3.2 iterations), passlib's documentation and the
# OpenBSD bcrypt tests.
DJANGO = "pbkdf2_sha256$260000$seasalt$YlZ2Vggtqdc61YjArZuoApoBh9JNGYoDRBUGu6tcJQo="
DJANGO_PASSWORD = "lètmein"
PASSLIB = "$pbkdf2-sha256$29000$N2YMIWQsBWBMae09x1jrPQ$1t8iyB2A.WF/Z5JZv.lfCIhXXN33N23OSgQYThBYRfk"
PASSLIB_PASSWORD = "toomanysecrets"
BCRYPT = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
BCRYPT_PASSWORD = "U*U"
FAST = Argon2Parameters(time_cost=1, memory_cost_kib=1024)


@pytest.fixture
def hasher() -> Iterator[Argon2PasswordHasher]:
    hasher = Argon2PasswordHasher(FAST, workers=2, max_pending=8, queue_timeout=5)
    yield hasher
    hasher.close()


@pytest.mark.parametrize(
    ("password_hash", "password"),
    [(DJANGO, DJANGO_PASSWORD), (PASSLIB, PASSLIB_PASSWORD), (BCRYPT, BCRYPT_PASSWORD)],
    ids=["django", "passlib", "bcrypt"],
)
async def test_published_vectors_verify_and_need_a_rehash(
    hasher: Argon2PasswordHasher, password_hash: str, password: str
) -> None:
    assert hasher.check_imported(password_hash) is None
    assert await hasher.verify(password_hash, password) is True
    assert await hasher.verify(password_hash, password + "x") is False
    assert hasher.needs_rehash(password_hash) is True


def test_bcrypt_variants_and_the_72_byte_limit() -> None:
    import bcrypt

    scheme = BcryptScheme()
    long_password = "p" * 72
    made = bcrypt.hashpw(long_password.encode(), bcrypt.gensalt(4)).decode()
    for prefix in ("$2a$", "$2b$", "$2y$"):
        variant = prefix + made[4:]
        assert scheme.recognizes(variant) and scheme.problem(variant) is None
        assert scheme.verify(variant, long_password)
    # bcrypt systems only ever hashed the first 72 bytes.
    assert scheme.verify(made, long_password + "ignored")


def test_passlib_and_django_formats_are_told_apart() -> None:
    django, passlib = DjangoPbkdf2Scheme(), PasslibPbkdf2Scheme()
    assert django.recognizes(DJANGO) and not django.recognizes(PASSLIB)
    assert passlib.recognizes(PASSLIB) and not passlib.recognizes(DJANGO)


@pytest.mark.parametrize(
    ("password_hash", "expected"),
    [
        ("", "is not in a supported format"),
        ("md5$salt$abc", "is not in a supported format"),
        ("$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaA", "is not in a supported format"),
        ("$argon2id$v=19$m=1024,t=1,p=1$!!!$!!!", "is not a well-formed argon2id hash"),
        (
            "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$"
            "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
            "has Argon2 parameters beyond m=262144, t=16, p=16",
        ),
        ("$2b$31$" + "C" * 53, "has a bcrypt cost outside 4 to 16"),
        ("$2b$12$tooshort", "is not a well-formed bcrypt hash"),
        (
            "pbkdf2_sha256$20000000$seasalt$YlZ2Vggtqdc61YjArZuoApoBh9JNGYoDRBUGu6tcJQo=",
            "has an iteration count outside 1 to 10,000,000",
        ),
        ("pbkdf2_sha256$260000$seasalt$c2hvcnQ=", "must hold a 32-byte PBKDF2-SHA256 key"),
        ("pbkdf2_sha256$260000$seasalt$not base64!", "is not a well-formed Django pbkdf2_sha256"),
        ("$pbkdf2-sha256$29000$N2YM$1t8i", "must hold a 32-byte PBKDF2-SHA256 key"),
        ("$pbkdf2-sha256$x$N2YM$1t8i", "is not a well-formed passlib pbkdf2-sha256 hash"),
    ],
)
def test_unusable_hashes_are_refused_with_a_reason(
    hasher: Argon2PasswordHasher, password_hash: str, expected: str
) -> None:
    problem = hasher.check_imported(password_hash)
    assert problem is not None and problem.startswith(expected), problem


async def test_argon2id_hashes_of_other_parameters_are_accepted(
    hasher: Argon2PasswordHasher,
) -> None:
    other = argon2.PasswordHasher(time_cost=3, memory_cost=2048, parallelism=2)
    password_hash = other.hash("imported password")
    assert hasher.check_imported(password_hash) is None
    assert await hasher.verify(password_hash, "imported password") is True
    assert hasher.needs_rehash(password_hash) is True


async def test_a_hash_no_scheme_knows_costs_one_real_verification_and_never_matches(
    hasher: Argon2PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real_verify = argon2.PasswordHasher.verify

    def counting_verify(self: argon2.PasswordHasher, hash: str, password: str) -> bool:
        threads.append(threading.current_thread().name)
        return real_verify(self, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", counting_verify)
    assert await hasher.verify("!", "any password") is False
    assert await hasher.verify("md5$salt$abc", "any password") is False
    assert len(threads) == 2
    assert all(name.startswith("argon2") for name in threads)


async def test_legacy_verification_runs_in_the_pool(
    hasher: Argon2PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real_verify = DjangoPbkdf2Scheme.verify

    def recording(self: DjangoPbkdf2Scheme, password_hash: str, password: str) -> bool:
        threads.append(threading.current_thread().name)
        return real_verify(self, password_hash, password)

    monkeypatch.setattr(DjangoPbkdf2Scheme, "verify", recording)
    assert await hasher.verify(DJANGO, DJANGO_PASSWORD) is True
    assert len(threads) == 1 and threads[0].startswith("argon2")
