"""How many torch threads a CPU training process uses.

``accelerate launch`` exports ``OMP_NUM_THREADS=1`` to its processes whenever the user has not set
it and no accelerate config says otherwise, so a single CPU process would train on one core of many
(10 steps of the main job: 57.5 s under ``accelerate launch`` against 32.0 s with ``python``). torch
also reads ``OMP_NUM_THREADS`` at import, so the only place to undo it is inside the process.
"""

from __future__ import annotations

import os

import torch

#: set by ``accelerate launch`` in every process it starts (accelerate/utils/launch.py)
ACCELERATE_LAUNCH_MARKER = "ACCELERATE_DYNAMO_BACKEND"


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def choose_threads(requested: str, on_cpu: bool, env=None) -> int | None:
    """The torch thread count to set, or None to keep torch's own choice.

    Args:
        requested: ``"auto"`` or a positive integer (``--torch_threads``).
        on_cpu: the run trains on the CPU.
        env: the environment (``os.environ`` by default).

    ``auto``: a CPU process under ``accelerate launch`` gets the available cores divided among the
    processes on this machine (``LOCAL_WORLD_SIZE``), so one process uses them all and two never
    oversubscribe them; everything else keeps torch's choice (``OMP_NUM_THREADS`` when set, else all cores).
    """
    env = os.environ if env is None else env
    if requested != "auto":
        return int(requested)
    if not on_cpu or ACCELERATE_LAUNCH_MARKER not in env:
        return None
    local = max(1, int(env.get("LOCAL_WORLD_SIZE", "1") or 1))
    return max(1, available_cores() // local)


def parse_threads(value: str) -> str:
    """Validate ``--torch_threads``: ``auto`` or a positive integer; returns it unchanged."""
    if value == "auto" or (value.isdigit() and int(value) > 0):
        return value
    raise ValueError(f"--torch_threads must be 'auto' or a positive integer, got {value!r}")


def apply_threads(requested: str, on_cpu: bool) -> int:
    """Set torch's intra-op threads as :func:`choose_threads` says; returns the count in use."""
    n = choose_threads(requested, on_cpu)
    if n is not None and n != torch.get_num_threads():
        torch.set_num_threads(n)
    return torch.get_num_threads()
