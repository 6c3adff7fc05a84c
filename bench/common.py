"""Helpers shared by the bench scripts: machine description and JSON output."""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from mars_segformer.data import MarsDataError, load_arrays
from mars_segformer.outputs import atomic_write_json
from mars_segformer.training.devices import describe_machine as machine  # noqa: F401  (one place for it)

RESULTS = Path(__file__).parent / "results"
#: the labelled shared data file beside the checkout (``../shared/data``; users' clones have none)
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ai4mars_msl_64x128.npz"


def result_name(text: str) -> str:
    """A results name (``--name``, or ``--out`` where it names the results): ``bench/results/NAME.json`` and, in
    some scripts, ``docs/NAME.*``, so a file name, never a path that would write outside those folders.

    Raises:
        argparse.ArgumentTypeError: a name with a folder in it, an empty one or a hidden one.
    """
    if not text or Path(text).name != text or text.startswith("."):  # "." and ".." start with a dot too
        raise argparse.ArgumentTypeError(f"expected a file name without a folder (written as bench/results/NAME.json), "
                                         f"got {text!r}")
    return text


def load_data(parser: argparse.ArgumentParser, data: str | None):
    """The arrays of ``--data`` (``data.load_arrays``), a user's mistake in it (no such file, a file of another
    layout) answered as the parser answers a bad flag: one line naming ``--data``, exit 2, nothing written."""
    try:
        return load_arrays(data)
    except MarsDataError as err:
        parser.error(f"--data: {err}")


def command_line() -> str:
    """The command this bench script was started with, as a results file records it (every flag as given)."""
    return f"python bench/{Path(sys.argv[0]).name} {shlex.join(sys.argv[1:])}".strip()


def save(name: str, result: dict) -> Path:
    """Write ``result`` to ``bench/results/NAME.json`` (atomically) and print it.

    Raises:
        ValueError: ``name`` is not a plain file name (:func:`result_name`).
    """
    try:
        result_name(name)
    except argparse.ArgumentTypeError as e:
        raise ValueError(str(e)) from None
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    atomic_write_json(path, result)
    print(json.dumps(result, indent=1))
    print(f"saved {path}")
    return path


def run_child(cmd: list[str], **popen_kwargs) -> int:
    """Run a training command to its end and return its exit code, stopping it cleanly if the runner is stopped.

    A SIGTERM or SIGHUP to the runner (``kill PID``, a closed terminal; not under ``nohup``, whose ignored SIGHUP
    stays ignored) is passed on to the child as SIGTERM, which
    ``train_hf.py`` answers by saving a checkpoint at the end of its step; the runner waits for that and then exits
    with 128 + the signal instead of starting its next run. Ctrl-C (SIGINT) reaches the child from the terminal's
    process group itself, so the runner does not pass it on (a second signal would stop the child without its
    checkpoint); it only waits, then exits 130. Without this, stopping a runner left its training running, orphaned.

    Args:
        cmd: the child's command line.
        **popen_kwargs: passed to :class:`subprocess.Popen` (``cwd``, ``stdout``, ``env``, ...).
    """
    got: list[int] = []
    proc = None

    def on_signal(signum, frame):
        got.append(signum)
        if proc is not None and signum != signal.SIGINT:
            proc.send_signal(signal.SIGTERM)

    # a signal the runner was started ignoring stays ignored: under ``nohup`` a closed terminal's SIGHUP must not
    # stop the training
    stops = [s for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT) if signal.getsignal(s) is not signal.SIG_IGN]
    previous = {s: signal.signal(s, on_signal) for s in stops}
    try:
        proc = subprocess.Popen(cmd, **popen_kwargs)
        if got and got[0] != signal.SIGINT:  # stopped while the child was starting
            proc.send_signal(signal.SIGTERM)
        code = proc.wait()
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    if got:
        raise SystemExit(128 + got[0])
    return code


def run_folders(parser, specs: list[str], need=("config.json",), what: str = "a run folder") -> list[Path]:
    """``--runs`` values as paths, each holding the files ``need``; otherwise the parser's one-line exit 2."""
    runs = [Path(r) for r in specs]
    for r in runs:
        missing = [f for f in need if not (r / f).is_file()]
        if missing:
            parser.error(f"--runs: {r} has no {' and no '.join(missing)}; expected {what}")
    return runs


def logged_evals(log: Path) -> list[dict]:
    """The evaluation dicts a ``train_hf.py`` run printed to its log (lines with ``eval_task_mean_iou``), in order."""
    import ast

    return [ast.literal_eval(line) for line in log.read_text().splitlines()
            if line.startswith("{") and "'eval_task_mean_iou'" in line]
