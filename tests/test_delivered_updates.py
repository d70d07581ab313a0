"""Pushed updates are recorded before they are handled, so each is handled once by a fleet: the storage
rule on SQLite and PostgreSQL. The webhook around it is in test_telegram_webhook.py."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update

from bot.storage.models import DeliveredUpdate
from bot.storage.repository import Repository


def test_an_update_is_new_once_per_platform(database):
    store = Repository(database, None)
    assert store.first_delivery("telegram", 7)
    assert not store.first_delivery("telegram", 7)
    assert store.first_delivery("telegram", 8)
    assert store.first_delivery("discord", 7)  # another platform's ids are its own
    assert store.first_delivery("telegram", 2 ** 62)  # Telegram's ids are 64-bit once random


def test_replicas_taking_the_same_update_at_once_handle_it_once(database):
    """The same POST delivered to four replicas at the same moment: one takes it, the others see it taken,
    and none gets an error (no lock wait turned into a failure, no unique-violation escaping)."""
    store = Repository(database, None)
    for update_id in range(100, 110):
        start, results, errors = threading.Barrier(4), [], []

        def claim() -> None:
            start.wait()
            try:
                results.append(store.first_delivery("telegram", update_id))  # noqa: B023 - joined below
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)

        threads = [threading.Thread(target=claim) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors and sorted(results) == [False, False, False, True], update_id


def test_old_records_are_forgotten(database):
    store = Repository(database, None)
    for update_id in (1, 2, 3):
        store.first_delivery("telegram", update_id)
    two_days_ago = datetime.now(timezone.utc) - timedelta(days=2)
    with database.transaction() as session:
        session.execute(update(DeliveredUpdate).where(DeliveredUpdate.update_id < 3).values(received_at=two_days_ago))
    assert store.forget_deliveries(datetime.now(timezone.utc) - timedelta(days=1)) == 2
    with database.transaction() as session:
        assert session.scalars(select(DeliveredUpdate.update_id)).all() == [3]
