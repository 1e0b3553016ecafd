"""The soak, in the shorter form CI runs (the full one is ``python -m benchmarks.soak``)."""

from __future__ import annotations

import os

import pytest

from benchmarks.soak import run_soak


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_every_message_reaches_every_room_member_exactly_once() -> None:
    clients = int(os.environ.get("CHANNELS_SOAK_CLIENTS", "200"))
    duration = float(os.environ.get("CHANNELS_SOAK_SECONDS", "20"))
    result = run_soak(clients=clients, rooms=max(1, clients // 20), duration=duration)
    assert result.connect_failures == 0
    assert result.sent > clients  # everyone talked
    assert result.lost == 0, result
    assert result.duplicated == 0, result
    assert result.delivered == result.expected_deliveries
    assert result.redis_keys_left == []
    # Memory flat once warmed up: a few MB of noise, no growth with the traffic.
    assert all(growth < 15 for growth in result.rss_growth_last_half_mb.values()), result
