"""CPU time per process group of a running local stack, from /proc: where a run's cost goes."""

import json
import os
from pathlib import Path

from tests.stack import child_pids

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def descendants(root: int) -> list[int]:
    """A process and every process below it."""
    out, frontier = [root], [root]
    while frontier:
        frontier = [child for pid in frontier for child in child_pids(pid)]
        out += frontier
    return out


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        st = _stat(pid)
        if st:
            total += (int(st[11]) + int(st[12])) / _TICK
    return total


def groups(state_dir: Path) -> dict[str, list[int]]:
    pids = json.loads((state_dir / "stack.json").read_text())["pids"]
    postmaster = int((state_dir / "pg" / "postmaster.pid").read_text().split()[0])
    out: dict[str, list[int]] = {}
    for name, pid in pids.items():
        group = "worker" if name.startswith("worker-") else name  # every runs worker process: "worker"
        out.setdefault(group, []).extend(descendants(pid))
    out["postgres"] = descendants(postmaster)
    return out


def sample(state_dir: Path) -> dict[str, float]:
    return {name: _cpu(pids) for name, pids in groups(state_dir).items()}
