"""How many torch threads a CPU training process uses.

``accelerate launch`` exports ``OMP_NUM_THREADS=1`` to its processes whenever the user has not set
it and no accelerate config says otherwise, so a single CPU process would train on one core of many
(10 steps of the main job: 57.5 s under ``accelerate launch`` against 32.0 s with ``python``). torch
also reads ``OMP_NUM_THREADS`` at import, so the only place to undo it is inside the process.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

#: a core counts as busy when other processes used more than this share of it while we looked
BUSY_SHARE = 0.5
#: how long the start-up looks at the cores (seconds)
SAMPLE_S = 0.3

#: set by ``accelerate launch`` in every process it starts (accelerate/utils/launch.py)
ACCELERATE_LAUNCH_MARKER = "ACCELERATE_DYNAMO_BACKEND"


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def busy_cores(sample_s: float = SAMPLE_S) -> int | None:
    """Cores of this process's affinity that other work keeps busy, from two reads of ``/proc/stat``
    ``sample_s`` apart; None where there is no ``/proc/stat``."""
    def read() -> dict[str, tuple[int, int]]:
        out = {}
        for line in Path("/proc/stat").read_text().splitlines():
            name, *ticks = line.split()
            if name.startswith("cpu") and name != "cpu":
                t = [int(x) for x in ticks]
                out[name] = (sum(t), t[3] + (t[4] if len(t) > 4 else 0))  # total, idle + iowait
        return out

    try:
        mine = os.sched_getaffinity(0)
        before = read()
        time.sleep(sample_s)
        after = read()
    except (OSError, AttributeError, ValueError):
        return None
    busy = 0
    for cpu in mine:
        a, b = before.get(f"cpu{cpu}"), after.get(f"cpu{cpu}")
        if a and b and b[0] > a[0]:
            busy += (1 - (b[1] - a[1]) / (b[0] - a[0])) > BUSY_SHARE
    return busy


def choose_threads(requested: str, on_cpu: bool, env=None, busy: int | None = None) -> int | None:
    """The torch thread count to set, or None to keep torch's own choice.

    Args:
        requested: ``"auto"`` or a positive integer (``--torch_threads``).
        on_cpu: the run trains on the CPU.
        env: the environment (``os.environ`` by default).
        busy: cores other processes keep busy (:func:`busy_cores`; given by tests).

    ``auto`` on a CPU: the available cores less the busy ones (a 2-thread training beside one busy
    process ran about 4x slower per step, its threads waiting on the shared core), divided among the
    processes on this machine (``LOCAL_WORLD_SIZE``) under ``accelerate launch``; at least one. A plain
    ``python`` process with ``OMP_NUM_THREADS`` set keeps it, and a GPU run keeps torch's choice.
    """
    env = os.environ if env is None else env
    if requested != "auto":
        return int(requested)
    launched = ACCELERATE_LAUNCH_MARKER in env
    if not on_cpu or (not launched and env.get("OMP_NUM_THREADS")):
        return None
    cores = available_cores()
    free = max(1, cores - (busy or 0))
    if launched:
        local = max(1, int(env.get("LOCAL_WORLD_SIZE", "1") or 1))
        return max(1, min(cores // local, free))
    return free if free < cores else None


def parse_threads(value: str) -> str:
    """Validate ``--torch_threads``: ``auto`` or a positive integer; returns it unchanged."""
    if value == "auto" or (value.isdigit() and int(value) > 0):
        return value
    raise ValueError(f"--torch_threads must be 'auto' or a positive integer, got {value!r}")


def apply_threads(requested: str, on_cpu: bool) -> tuple[int, str]:
    """Set torch's intra-op threads as :func:`choose_threads` says.

    Returns:
        (the count in use, a note for the start-up line: why ``auto`` chose fewer than the cores, or "").
    """
    idle = choose_threads(requested, on_cpu, busy=0)
    # look at the cores only where the answer depends on them (not for a number, a GPU or a set OMP_NUM_THREADS)
    busy = busy_cores() if idle != choose_threads(requested, on_cpu, busy=1) else None
    n = choose_threads(requested, on_cpu, busy=busy)
    if n is not None and n != torch.get_num_threads():
        torch.set_num_threads(n)
    note = (f" (auto: {busy} of {available_cores()} cores busy with other work at start; "
            "--torch_threads N to choose)") if n != idle else ""
    return torch.get_num_threads(), note
