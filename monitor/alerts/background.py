"""The alert round of an `omvarld collect`, run by a process that outlives it
(`[alerting] background`, the default).

When the pass has ended, the collecting process hands its round to a new process
(`hand_off_round`) and exits. That process reads the pass's new posts, matches them, claims,
delivers and prints its report on the same stdout and stderr (cron mails what a job and what it
started write, so the report still reaches whoever reads them), then exits. The pass pays a few
milliseconds to start it. Done beside the pass instead, the alert process's Python, Apprise, its
message writer and its reading took the core the pass needs: with 50 rules, a churn pass of
2,000 feeds took a quarter longer (issue 14, docs/performance.md).

The process runs in a session of its own, so a Ctrl-C or hang-up meant for `collect` does not
reach it. If it is killed (a systemd oneshot unit or a container ends what it started: set
`background = false` there), its pass stays recorded and the next pass takes it over, as the
process that recorded it is gone; alerts it had claimed are retried once stale. If it hangs, its
own alarm stops it (after DATABASE_SECONDS of database work, or a delivery's [alerting] timeout
and ANSWER_GRACE_SECONDS more): what it had claimed is marked failed, to be retried.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import pickle
import signal
import subprocess
import sys
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

from monitor.alerts.alerter import (
    ANSWER_GRACE_SECONDS,
    DATABASE_SECONDS,
    AlertReport,
    Round,
    log_settings,
    report_failed_round,
    round_config,
)
from monitor.db import first_line
from monitor.processes import widen_pipe

if TYPE_CHECKING:
    from monitor.config import Config

log = logging.getLogger(__name__)

# The processes this one handed rounds to, held for as long as it lives: a Popen dropped while
# its process runs warns that it was leaked, and these are meant to outlive their parent.
started: list[subprocess.Popen[bytes]] = []


@dataclass(frozen=True)
class RoundRequest:
    """What the process is handed: the config without sources and recipients, the log level
    and format of the process that collected, and the round."""

    config: Config
    logs: tuple[int, str | None]
    alert_round: Round


def hand_off_round(config: Config, alert_round: Round) -> AlertReport:
    """Start the process that runs the round, and return without waiting for it: the report
    names it. Never raises: a process that cannot start is one line of the report, and the
    pass, still recorded, is taken over by the next one."""
    request = RoundRequest(round_config(config), log_settings(), alert_round)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor.alerts.background"],
            stdin=subprocess.PIPE,
            start_new_session=True,  # the terminal's Ctrl-C for `collect` is not for it
        )
    except OSError as error:
        reason = f"the alert round could not start: {error}; the next pass sends its alerts"
        log.warning("alerts: %s", reason)
        return AlertReport(failures=(reason,))
    assert process.stdin is not None
    widen_pipe(process.stdin.fileno())  # a larger pipe takes the request without waiting
    try:
        pickle.dump(request, process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        process.stdin.close()
    except OSError as error:  # it died at once: the next pass takes the pass over
        reason = f"the alert round ended before it began: {error}; the next pass sends its alerts"
        log.warning("alerts: %s", reason)
        return AlertReport(failures=(reason,))
    log.info("alert round of pass %s handed to process %s", alert_round.pass_id, process.pid)
    started.append(process)
    return AlertReport(handed_to=process.pid)


class _Overdue(Exception):
    """The round's alarm rang: it took longer than it said it would."""


HUNG = b"omvarld: the alert round hung and was ended; its alerts are tried again later\n"


def _ring(signum: int, frame: FrameType | None) -> None:
    """Stop the round; if it is still there ANSWER_GRACE_SECONDS later (a delivery thread that
    never returns keeps its pool from closing), end the process."""
    signal.signal(signal.SIGALRM, _end)
    signal.alarm(math.ceil(ANSWER_GRACE_SECONDS))
    raise _Overdue


def _end(signum: int, frame: FrameType | None) -> None:
    os.write(2, HUNG)
    os._exit(1)


def _set_alarm(seconds: float) -> None:
    signal.alarm(max(1, math.ceil(seconds)))


def run_round(request: RoundRequest) -> AlertReport:
    """The round, under its alarm; never raises."""
    signal.signal(signal.SIGALRM, _ring)
    _set_alarm(DATABASE_SECONDS)
    try:
        return _run_round(request)
    finally:
        signal.alarm(0)


def _run_round(request: RoundRequest) -> AlertReport:
    from monitor.alerts.deliver import Sender
    from monitor.db import make_engine

    config = request.config
    engine = make_engine(config.database_url)
    try:

        def progress(seconds: float) -> None:
            _set_alarm(seconds + ANSWER_GRACE_SECONDS)

        sender = Sender(config.digest.timezone, config.web.public_url, config.alerting.timeout,
                        progress)  # fmt: skip
        return request.alert_round.run(config, engine, sender.send)
    except _Overdue:
        reason = "the alert round took longer than its deliveries' timeout and was stopped"
    except Exception as error:  # the database gone for a moment: the next pass retries
        log.warning("alerts failed: %s", first_line(error), exc_info=True)
        reason = f"alerts could not run: {first_line(error)}"
    return report_failed_round(config, engine, request.alert_round.now, reason)


def main() -> None:
    """The process: read the request from stdin, run the round, print its report, exit."""
    try:
        request = pickle.load(sys.stdin.buffer)  # from the process that started this one
    except Exception as error:  # it died while writing: its pass is taken over by the next
        why = first_line(error) or type(error).__name__
        print(f"omvarld: the alert round got no request: {why}; the next pass sends its alerts",
              file=sys.stderr)  # fmt: skip
        sys.exit(1)
    sys.stdin.close()
    level, log_format = request.logs
    logging.basicConfig(level=level, format=log_format or logging.BASIC_FORMAT)
    report = run_round(request)
    from monitor.cli.collecting import print_alert_report

    # Whoever read `collect`'s output may be gone (`omvarld collect | head`): the round is
    # recorded all the same.
    with contextlib.suppress(OSError, ValueError):
        print_alert_report(report)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    # A delivery thread that hangs past the alarm must not keep the process.
    os._exit(0)


if __name__ == "__main__":
    main()
