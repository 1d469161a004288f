"""Run one command and report its wall time and memory: `measure.py RESULT_JSON CMD …`.

The benchmark starts each contestant through this small process rather than directly: a child
exec'd straight from the benchmark would count the benchmark's own memory (the feeds it holds)
in its ru_maxrss, because Linux records the high-water mark of the address space a process
leaves at exec. This interpreter is started with -I -S and imports little, so its mark stays
below any contestant's.

Two memory figures: ru_maxrss, the peak of the largest single process (the command or any
process it started and waited for), and the peak of the whole process tree's summed PSS
(proportional set size: a page shared by forked processes counts once in all), sampled every
100 ms, which is what a contestant that works in several processes costs.
"""

import json
import os
import sys
import threading
import time


def tree_pss_kb(root: int) -> int:
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        try:
            with open(f"/proc/{pid}/smaps_rollup") as rollup:
                for line in rollup:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])  # kB
                        break
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as children:
                    pending.extend(int(child) for child in children.read().split())
        except (OSError, ValueError):
            continue  # the process ended between two reads
    return total


def main() -> int:
    result, command = sys.argv[1], sys.argv[2:]
    peak_tree = 0
    done = threading.Event()
    started = time.perf_counter()
    pid = os.posix_spawnp(command[0], command, os.environ)

    def sample() -> None:
        nonlocal peak_tree
        while not done.wait(0.1):
            peak_tree = max(peak_tree, tree_pss_kb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    figures = {
        "seconds": seconds,
        "exit_code": os.waitstatus_to_exitcode(status),
        "peak_rss_kb": usage.ru_maxrss,  # KB on Linux
        "peak_tree_pss_kb": peak_tree,
    }
    with open(result, "w") as out:
        json.dump(figures, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
