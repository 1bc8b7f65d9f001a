"""Giving up on waits with one timer for all of them (chatserver/api/patience.py)."""

import asyncio
import time

import pytest

from chatserver.api.patience import Patience


async def test_a_wait_past_its_time_ends_with_timeout_error_within_a_tick():
    patience = Patience(0.2, 0.05)
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        with patience.wait():
            await asyncio.sleep(5)
    assert 0.2 <= time.monotonic() - began < 0.35


async def test_waits_that_end_in_time_are_never_cancelled_later():
    patience = Patience(0.1, 0.02)
    for _ in range(3):
        with patience.wait():
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)  # past every wait's time: this task is still not cancelled


async def test_each_of_many_waits_gives_up_in_the_order_they_began():
    patience = Patience(0.1, 0.02)
    ended: list[int] = []

    async def waiting(n: int, seconds: float) -> None:
        try:
            with patience.wait():
                await asyncio.sleep(seconds)
        except TimeoutError:
            ended.append(n)

    tasks = []
    for n in range(4):
        tasks.append(asyncio.create_task(waiting(n, 0.01 if n == 1 else 5)))
        await asyncio.sleep(0.03)
    await asyncio.wait_for(asyncio.gather(*tasks), 2)
    assert ended == [0, 2, 3]


async def test_a_cancellation_from_elsewhere_stays_a_cancellation():
    patience = Patience(5, 0.05)

    async def waiting() -> None:
        with patience.wait():
            await asyncio.sleep(10)

    task = asyncio.create_task(waiting())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
