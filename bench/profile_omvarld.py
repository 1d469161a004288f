"""Run the omvarld CLI under cProfile, in every thread, and save the merged profile.

`python -m cProfile` sees only the main thread, where Omvärld mostly waits on its event loop:
the storing happens on a database thread. Here each new thread starts a profiler of its own
(via threading.setprofile), and all are merged into one pstats file.

The CLI runs as the console script runs it (`monitor.cli.main`: a plain `collect` takes the
short way, without Typer), and the profile is written by an exit handler: after a `collect`
the console script ends the process itself, once the exit handlers have run.

    profile_omvarld.py OUT.prof [omvarld arguments …]
"""

from __future__ import annotations

import atexit
import cProfile
import pstats
import sys
import threading
from typing import Any

thread_profiles: list[cProfile.Profile] = []


def _profile_this_thread(_frame: Any, _event: str, _arg: Any) -> None:
    profile = cProfile.Profile()
    thread_profiles.append(profile)
    profile.enable()  # replaces this hook for the rest of the thread


def main(argv: list[str]) -> int:
    out, args = argv[0], argv[1:]
    threading.setprofile(_profile_this_thread)
    main_profile = cProfile.Profile()

    def dump() -> None:
        main_profile.disable()
        stats = pstats.Stats(main_profile)
        for profile in thread_profiles:
            stats.add(profile)
        stats.dump_stats(out)

    atexit.register(dump)
    main_profile.enable()  # before the import: start-up counts
    from monitor.cli import main as omvarld

    sys.argv = ["omvarld", *args]
    omvarld()  # ends the process
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
