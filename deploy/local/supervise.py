"""Keep one service running, as Compose's `restart: unless-stopped` and Kubernetes do for the cluster's services.

    python -m deploy.local.supervise --pidfile FILE -- COMMAND [ARGS…]

The local stack's Celery workers and beat run under this. A worker must be allowed to die: one that meets a
broker failure Celery cannot recover from (a Redis restart at an unlucky moment leaves its consumer unable to
reconnect; a known Celery/kombu issue) exits, and is started again here within a second — its steps in flight
are redone by the beat's sweep. The command's current pid is kept in FILE (tests signal the service through it).
SIGTERM or SIGINT stop the command and this supervisor for good.
"""

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

RESTART_DELAY = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.supervise")
    parser.add_argument("--pidfile", type=Path, required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        child = subprocess.Popen(command)  # same process group: stopping the stack stops both
        args.pidfile.write_text(f"{child.pid}\n")
        code = child.wait()
        if stopping:
            sys.exit(code)
        print(f"supervise: {command[0]} exited with {code}; starting it again in {RESTART_DELAY:.0f} s",
              file=sys.stderr, flush=True)
        time.sleep(RESTART_DELAY)
        if stopping:
            sys.exit(code)


if __name__ == "__main__":
    main()
