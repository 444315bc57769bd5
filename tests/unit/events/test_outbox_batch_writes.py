"""What ``BatchWriteItem`` leaves unprocessed is sent again, a bounded number of times."""

from __future__ import annotations

from usermgmt_server.adapters.dynamodb.batches import WriteRequest, resend_unprocessed


def deletes(count: int) -> list[WriteRequest]:
    return [{"DeleteRequest": {"Key": {"pk": {"S": f"k{n}"}}}} for n in range(count)]


class Throttled:
    """A table that processes ``per_call`` requests of each call and returns the rest."""

    def __init__(self, per_call: int) -> None:
        self.per_call = per_call
        self.calls: list[int] = []
        self.applied: list[WriteRequest] = []

    async def send(self, batch: list[WriteRequest]) -> list[WriteRequest]:
        self.calls.append(len(batch))
        self.applied += batch[: self.per_call]
        return batch[self.per_call :]


async def test_unprocessed_requests_are_sent_again_until_none_is_left() -> None:
    table = Throttled(per_call=10)
    requests = deletes(25)
    left = await resend_unprocessed(table.send, requests, attempts=5, first_delay=0.001)
    assert left == []
    assert table.calls == [25, 15, 5]
    assert table.applied == requests


async def test_what_is_still_unprocessed_after_the_last_attempt_is_returned() -> None:
    table = Throttled(per_call=2)
    requests = deletes(25)
    left = await resend_unprocessed(table.send, requests, attempts=3, first_delay=0.001)
    assert table.calls == [25, 23, 21]
    assert left == requests[6:]


async def test_a_fully_processed_call_is_not_repeated() -> None:
    table = Throttled(per_call=25)
    assert await resend_unprocessed(table.send, deletes(25), first_delay=0.001) == []
    assert table.calls == [25]
