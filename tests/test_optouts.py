"""Opt-outs: who unsubscribed, recorded once however often or concurrently they click."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from digest.optouts import (
    ONE_CLICK,
    RECIPIENT_PAGE,
    describe_opt_out,
    find_opt_out,
    list_opt_outs,
    record_opt_out,
    remove_opt_out,
)
from monitor.models import digest_opt_outs
from tests.conftest import count

NOW = datetime(2026, 12, 6, 22, 30, tzinfo=UTC)  # already Monday 7 December in Stockholm


def test_an_opt_out_is_recorded_once_with_when_and_how(engine: Engine) -> None:
    assert record_opt_out(engine, "Anna@Example.se", NOW, ONE_CLICK) is True
    again = NOW + timedelta(hours=1)
    assert record_opt_out(engine, "Anna@Example.se", again, RECIPIENT_PAGE) is False
    assert record_opt_out(engine, "anna@example.se", again, RECIPIENT_PAGE) is False

    opt_outs = list_opt_outs(engine)
    assert list(opt_outs) == ["anna@example.se"]
    anna = find_opt_out(opt_outs, "ANNA@example.SE")
    assert anna is not None
    assert (anna.recipient, anna.opted_out_at, anna.via) == ("Anna@Example.se", NOW, ONE_CLICK)
    assert describe_opt_out(anna, "Europe/Stockholm") == "unsubscribed 2026-12-06 via one-click"
    assert find_opt_out(opt_outs, "bo@example.se") is None


def test_twenty_concurrent_clicks_record_one_opt_out(engine: Engine) -> None:
    results: list[bool] = []
    start = threading.Barrier(20)

    def click() -> None:
        start.wait()
        results.append(record_opt_out(engine, "anna@example.se", NOW, ONE_CLICK))

    threads = [threading.Thread(target=click) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False] * 19 + [True]
    assert count(engine, digest_opt_outs) == 1


def test_resubscribing_removes_the_opt_out_in_any_letter_case(engine: Engine) -> None:
    record_opt_out(engine, "anna@example.se", NOW, ONE_CLICK)
    record_opt_out(engine, "bo@example.se", NOW, ONE_CLICK)

    assert remove_opt_out(engine, "Anna@Example.SE") is True
    assert remove_opt_out(engine, "anna@example.se") is False
    assert list(list_opt_outs(engine)) == ["bo@example.se"]
    assert record_opt_out(engine, "anna@example.se", NOW, ONE_CLICK) is True
