"""The event loop's lag monitor: a loop held up is seen, measured, logged once and reported per phase."""

from __future__ import annotations

import asyncio
import logging
import time

from bot.loop_lag import LoopLag


async def test_a_blocked_loop_is_measured_and_logged_once(caplog):
    lag = LoopLag(interval=0.02, warn_after=0.2)
    lag.start()
    await asyncio.sleep(0.1)
    assert lag.worst < 0.15  # an idle loop runs on time (within what a shared machine allows)
    with caplog.at_level(logging.WARNING, logger="bot.loop_lag"):
        time.sleep(0.4)  # a blocking call on the loop: nothing else runs meanwhile
        await asyncio.sleep(0.1)
        time.sleep(0.3)  # again, within the minute: measured, not logged again
        await asyncio.sleep(0.1)
    await lag.stop()
    assert 0.35 <= lag.worst < 2.0 and lag.recent() == lag.worst
    warnings = [r.getMessage() for r in caplog.records if r.name == "bot.loop_lag"]
    assert len(warnings) == 1 and "held up for 0.4 s" in warnings[0]
    assert not lag.running


async def test_peak_says_each_phase_apart():
    lag = LoopLag(interval=0.02, warn_after=float("inf"))
    lag.start()
    await asyncio.sleep(0.05)  # the monitor is waiting for its timer
    time.sleep(0.3)
    await asyncio.sleep(0.05)
    first = lag.peak()
    await asyncio.sleep(0.2)
    second = lag.peak()
    await lag.stop()
    assert first >= 0.25 and second < first and lag.worst == first


def test_recent_forgets_what_is_older_than_its_window():
    now = [1000.0]
    lag = LoopLag(window=60.0, clock=lambda: now[0])
    lag.record(5.0)
    now[0] += 30
    lag.record(0.5)
    assert lag.recent() == 5.0
    now[0] += 45
    lag.record(0.1)
    assert lag.recent() == 0.5 and lag.worst == 5.0
