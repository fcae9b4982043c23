"""Entry point of a child crawl: die with the process that started it, then run the CLI.

The launcher starts crawls as ``python -m scheduler.child crawl ...``. The child
asks the kernel itself for SIGTERM when its parent dies (``PR_SET_PDEATHSIG``),
first thing, before anything heavy is imported. Doing it in the parent with
``preexec_fn`` would run Python between fork and exec in a multi-threaded daemon,
which can deadlock the child.

The launcher passes its pid in ``NEWSVAULT_PARENT_PID``: if the parent died
before the request took effect the signal will never come, so the child checks
that its parent is still the one that started it and does not crawl otherwise.

A cluster's daemon asks for SIGKILL instead (``NEWSVAULT_PARENT_DEATH_SIGNAL=KILL``):
its run is retried on another host under the same snapshot id, so the dying
host's crawl must not finish and commit a partial snapshot first.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Mapping, Sequence

PARENT_PID_ENV = "NEWSVAULT_PARENT_PID"
PARENT_DEATH_SIGNAL_ENV = "NEWSVAULT_PARENT_DEATH_SIGNAL"
EXIT_ORPHANED = 1

_PR_SET_PDEATHSIG = 1


def arrange_parent_death_signal(env: Mapping[str, str] | None = None) -> bool:
    """Get SIGTERM (or the signal the launcher names) when the launching process dies; False if it is already gone.

    Off Linux there is no such signal; the job lock still keeps a new run of the
    same job from overlapping an orphaned crawl.
    """
    env = os.environ if env is None else env
    death_signal = signal.SIGKILL if env.get(PARENT_DEATH_SIGNAL_ENV) == "KILL" else signal.SIGTERM
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, int(death_signal), 0, 0, 0) != 0:
                print(f"newsvault: warning: prctl(PR_SET_PDEATHSIG) failed: "
                      f"{os.strerror(ctypes.get_errno())}", file=sys.stderr)
        except (OSError, AttributeError) as exc:
            print(f"newsvault: warning: cannot ask for a parent-death signal: {exc}", file=sys.stderr)
    expected = env.get(PARENT_PID_ENV, "")
    # Checked after prctl: a parent that dies from here on sends the signal.
    return not expected.isdigit() or os.getppid() == int(expected)


def main(argv: Sequence[str] | None = None) -> int:
    if not arrange_parent_death_signal():
        print("newsvault: error: the process that started this crawl is gone; not crawling",
              file=sys.stderr)
        return EXIT_ORPHANED
    # Nothing this process starts was launched by the daemon.
    os.environ.pop(PARENT_PID_ENV, None)
    os.environ.pop(PARENT_DEATH_SIGNAL_ENV, None)
    from scheduler.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
