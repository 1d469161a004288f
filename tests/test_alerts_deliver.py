"""Writing and sending a round's messages through Apprise (`monitor.alerts.deliver.Sender`),
against a real loopback webhook: one answer per message, a refusal in one line."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.alerts.deliver import Channel, Outgoing, Sender
from monitor.alerts.rules import NewPost
from tests.webhookserver import WebhookReceiver


def flooding(number: int) -> NewPost:
    return NewPost(
        id=number,
        source_key="flen",
        source_platform="feed",
        channel="feed",
        organisation="Flens kommun",
        groups=(),
        published_at=datetime(2026, 12, 6, 8, 0, tzinfo=UTC),
        title=f"Översvämning {number}",
        text=None,
        url=f"https://www.flen.se/nyheter/{number}",
    )


def test_each_message_is_written_from_its_posts_and_answered_for() -> None:
    with WebhookReceiver() as live, WebhookReceiver() as broken:
        broken.status = 500
        heard: list[float] = []
        sender = Sender("Europe/Stockholm", None, 2, heard.append)
        to_live = Channel("live", live.apprise_url())
        to_broken = Channel("broken", broken.apprise_url())
        answers = sender.send(
            [
                Outgoing(to_live, "Kris", "keyword", "sv", (flooding(1), flooding(2)), 5),
                Outgoing(to_broken, "Kris", "keyword", "en", (flooding(1),), 1),
            ]
        )
        (received,) = live.messages()
    assert answers[0] is None
    assert answers[1] is not None and "500" in answers[1]
    assert heard == [2, 2, 2]  # before the deliveries, and after each
    assert received["title"] == "Kris: 5 nya inlägg"
    lines = received["message"].splitlines()
    assert lines[1] == "Översvämning 1" and lines[-1] == "… och 3 till"
