"""The ``RefreshTokenStore`` contract: single-use tokens, reuse detection, revocation, expiry."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from datetime import timedelta

from tests.storage.backends import Audit, StorageBackend
from tests.storage.factories import make_family, token_hash
from usermgmt_server.domain.model import Rotation, RotationOutcome
from usermgmt_server.domain.ports import RefreshTokenStore

INVALID = Rotation(RotationOutcome.INVALID)


async def test_rotation_chains_through_a_family(
    refresh_tokens: RefreshTokenStore, backend: StorageBackend
) -> None:
    family = make_family(backend.clock.now())
    chain = [token_hash() for _ in range(4)]
    await refresh_tokens.create_family(family, chain[0])

    for old, new in itertools.pairwise(chain):
        backend.clock.advance(timedelta(minutes=5))
        rotation = await refresh_tokens.rotate(old, new, backend.clock.now())
        assert rotation == Rotation(RotationOutcome.ROTATED, family)

    for token in chain:
        assert await refresh_tokens.find_family(token) == family
    audit = await backend.audit()
    assert audit.refresh_families == {family.family_id: False}
    assert audit.refresh_tokens == {chain[0]: True, chain[1]: True, chain[2]: True, chain[3]: False}


async def test_a_used_token_is_reported_as_reused(
    refresh_tokens: RefreshTokenStore, backend: StorageBackend
) -> None:
    family = make_family(backend.clock.now())
    first, second = token_hash(), token_hash()
    await refresh_tokens.create_family(family, first)
    await refresh_tokens.rotate(first, second, backend.clock.now())
    before = await backend.audit()

    replayed = await refresh_tokens.rotate(first, token_hash(), backend.clock.now())

    assert replayed == Rotation(RotationOutcome.REUSED, family)
    assert await backend.audit() == before


async def test_concurrent_rotations_of_one_token_admit_exactly_one(
    refresh_tokens: RefreshTokenStore, backend: StorageBackend
) -> None:
    family = make_family(backend.clock.now())
    token = token_hash()
    await refresh_tokens.create_family(family, token)
    successors = [token_hash() for _ in range(20)]

    rotations = await asyncio.gather(
        *(refresh_tokens.rotate(token, new, backend.clock.now()) for new in successors)
    )

    assert Counter(r.outcome for r in rotations) == {
        RotationOutcome.ROTATED: 1,
        RotationOutcome.REUSED: 19,
    }
    assert all(rotation.family == family for rotation in rotations)
    [winner] = [
        new
        for new, rotation in zip(successors, rotations, strict=True)
        if rotation.outcome is RotationOutcome.ROTATED
    ]
    assert (await backend.audit()).refresh_tokens == {token: True, winner: False}


async def test_a_revoked_family_rotates_nothing(
    refresh_tokens: RefreshTokenStore, backend: StorageBackend
) -> None:
    family = make_family(backend.clock.now())
    first, second = token_hash(), token_hash()
    await refresh_tokens.create_family(family, first)
    await refresh_tokens.rotate(first, second, backend.clock.now())

    await refresh_tokens.revoke_family(family.family_id)
    await refresh_tokens.revoke_family(family.family_id)

    assert await refresh_tokens.rotate(second, token_hash(), backend.clock.now()) == INVALID
    assert await refresh_tokens.find_family(first) is None
    assert await refresh_tokens.find_family(second) is None
    audit = await backend.audit()
    assert audit.refresh_families == {family.family_id: True}
    assert audit.refresh_tokens == {first: True, second: False}


async def test_expired_families_rotate_nothing(
    refresh_tokens: RefreshTokenStore, backend: StorageBackend
) -> None:
    family = make_family(backend.clock.now(), ttl=timedelta(hours=1))
    first, second = token_hash(), token_hash()
    await refresh_tokens.create_family(family, first)
    await refresh_tokens.rotate(first, second, backend.clock.now())

    backend.clock.advance(timedelta(hours=1) - timedelta(microseconds=1))
    assert await refresh_tokens.find_family(second) == family
    backend.clock.advance(timedelta(microseconds=1))

    assert await refresh_tokens.rotate(second, token_hash(), backend.clock.now()) == INVALID
    assert await refresh_tokens.rotate(first, token_hash(), backend.clock.now()) == INVALID
    assert await refresh_tokens.find_family(second) is None


async def test_unknown_tokens_are_invalid(
    refresh_tokens: RefreshTokenStore, backend: StorageBackend
) -> None:
    assert await refresh_tokens.rotate(token_hash(), token_hash(), backend.clock.now()) == INVALID
    assert await refresh_tokens.find_family(token_hash()) is None
    await refresh_tokens.revoke_family("no-such-family")
    assert await backend.audit() == Audit()


async def test_families_are_independent(
    refresh_tokens: RefreshTokenStore, backend: StorageBackend
) -> None:
    now = backend.clock.now()
    mine, theirs = make_family(now), make_family(now)
    my_token, their_token = token_hash(), token_hash()
    await refresh_tokens.create_family(mine, my_token)
    await refresh_tokens.create_family(theirs, their_token)

    await refresh_tokens.revoke_family(mine.family_id)

    assert await refresh_tokens.find_family(my_token) is None
    assert await refresh_tokens.find_family(their_token) == theirs
    rotation = await refresh_tokens.rotate(their_token, token_hash(), now)
    assert rotation == Rotation(RotationOutcome.ROTATED, theirs)
