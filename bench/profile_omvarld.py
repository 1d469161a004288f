"""Run the omvarld CLI under cProfile, in every thread, and save the merged profile.

`python -m cProfile` sees only the main thread, where Omvärld mostly waits on its event loop:
the storing happens on a database thread. Here each new thread starts a profiler of its own
(via threading.setprofile), and all are merged into one pstats file.

    profile_omvarld.py OUT.prof [omvarld arguments …]
"""

from __future__ import annotations

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
    code: int | str | None = 0
    main_profile.enable()  # before the import: start-up counts
    try:
        from monitor.cli import app

        app(args, prog_name="omvarld")
    except SystemExit as exit_:
        code = exit_.code
    finally:
        main_profile.disable()
    stats = pstats.Stats(main_profile)
    for profile in thread_profiles:
        stats.add(profile)
    stats.dump_stats(out)
    return code if isinstance(code, int) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
