"""What a training run does on a fault: a stop signal, a full disk, a second run on its folder.

- :class:`GracefulStop`: the first SIGTERM / SIGINT lets the current step finish, writes a checkpoint
  at that step and ends training; ``run`` then says where it stopped and how to resume (exit 143).
  A second signal stops at once (``KeyboardInterrupt``).
- :func:`is_disk_full` and :func:`remove_incomplete_checkpoints`: a write that fails for lack of
  space ends in one line (exit 1), and the checkpoint being written is removed, so the folder
  resumes from its newest complete checkpoint.
- :class:`RunLock`: an exclusive ``flock`` on ``<output_dir>/.lock`` for the run's lifetime; the
  kernel releases it when the process dies, so a lock file without a living holder is stale and
  taken over, with a line saying so.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
from pathlib import Path

from transformers import TrainerCallback

LOCK_FILE = ".lock"
#: the exit code of a run stopped by a signal (the shell's 128 + SIGTERM)
STOPPED_EXIT_CODE = 128 + signal.SIGTERM


class RunFault(RuntimeError):
    """A fault of the machine (not of the arguments) that ended the run; one line, exit 1."""


class RunStopped(RuntimeError):
    """The run stopped cleanly on a signal; the message says where and how to resume."""


class RunLocked(ValueError):
    """Another live process holds the run folder."""


def is_disk_full(err: BaseException) -> bool:
    """True for the errors a full disk raises while writing: ``ENOSPC`` / ``EDQUOT``, or torch's
    serializer failing part-way ("unexpected pos", "PytorchStreamWriter failed")."""
    while err is not None:
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(err, RuntimeError) and any(s in str(err) for s in ("unexpected pos", "PytorchStreamWriter failed")):
            return True
        err = err.__cause__ or err.__context__
    return False


def is_complete_checkpoint(folder: Path) -> bool:
    """Whether ``folder`` is a checkpoint written to the end.

    The Trainer writes ``trainer_state.json`` last, and not atomically (``open(..., "w")`` then one
    write), so a process killed while saving leaves the file missing, empty or cut short; only a file
    that parses as a JSON object marks a complete checkpoint.
    """
    try:
        return isinstance(json.loads((folder / "trainer_state.json").read_text()), dict)
    except (OSError, UnicodeDecodeError, ValueError):
        return False


def numbered_checkpoints(out: Path) -> list[tuple[int, Path]]:
    """The ``checkpoint-N`` folders of ``out`` with their step N, oldest first (none where ``out`` is no folder)."""
    if not out.is_dir():
        return []
    steps = {p: p.name.removeprefix("checkpoint-") for p in out.glob("checkpoint-*")}
    return sorted((int(n), p) for p, n in steps.items() if n.isdecimal() and p.is_dir())


def remove_incomplete_checkpoints(out: Path) -> list[str]:
    """Remove every ``checkpoint-*`` that is not complete (:func:`is_complete_checkpoint`) and stray
    temporary files; returns the names removed."""
    removed = []
    if not out.is_dir():
        return removed
    for ck in sorted(out.glob("checkpoint-*")):
        if ck.is_dir() and not is_complete_checkpoint(ck):
            shutil.rmtree(ck, ignore_errors=True)
            removed.append(ck.name)
    for tmp in out.glob("*.tmp*"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp.name)
    return removed


class GracefulStop(TrainerCallback):
    """Turns the first SIGTERM / SIGINT into "save a checkpoint at the end of this step, then stop"."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}

    def _handler(self, signum, frame):
        if self.signum is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self.signum = signum

    def install(self) -> GracefulStop:
        for s in self.SIGNALS:
            self._previous[s] = signal.signal(s, self._handler)
        return self

    def restore(self) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous.clear()

    def on_step_end(self, args, state, control, **kwargs):
        if self.signum is not None:
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        # the Trainer ends the epoch it broke out of: with epoch-wise evaluation that is a whole validation pass
        # (a minute per thousand tiles on a CPU) and a second save, a mid-epoch point on the curve. The
        # checkpoint was written at the step's end, so a stop ends there (this runs after DefaultFlowCallback's).
        if self.signum is not None:
            control.should_evaluate = False
            control.should_save = False
        return control

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""


class RunLock:
    """``with RunLock(folder):`` holds an exclusive lock on the run folder (created if needed).

    Raises:
        RunLocked: another living process holds it.
    """

    def __init__(self, folder: Path):
        self.folder, self.fd = Path(folder), None
        #: the pid of a process that died holding the lock file (taken over), if any
        self.stale_pid: str | None = None

    def __enter__(self) -> RunLock:
        import fcntl

        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RunLocked(f"output_dir {self.folder} is in use by another training (pid {holder}); wait for it, "
                            "or pick another --output_dir") from None
        previous = os.pread(fd, 64, 0).decode(errors="replace").strip()
        if previous:
            self.stale_pid = previous
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            (self.folder / LOCK_FILE).unlink(missing_ok=True)
            os.close(self.fd)
            self.fd = None


def check_room_to_resume(out: Path, need: int) -> None:
    """Refuse a resume that could not save its next checkpoint: the free space of ``out``'s disk must hold
    ``need`` bytes (one more checkpoint of the last one's size). Checked before anything is built, trained or
    written, so a resume on a disk still full changes nothing (without it, the resumed steps re-drew plots
    before the checkpoint write failed).

    Raises:
        RunFault: too little free space.
    """
    free = shutil.disk_usage(out).free
    if free < need:
        raise RunFault(f"{out}: no space left on device for the next checkpoint ({need / 1e6:.1f} MB needed, "
                       f"{free / 1e6:.1f} MB free); free space, then continue with --output_dir {out} "
                       "--resume_from_checkpoint true")


@contextlib.contextmanager
def disk_faults(out: Path):
    """Inside the block, a write that fails for lack of space becomes one :class:`RunFault` line, and
    the half-written checkpoint and temporary files are removed first."""
    try:
        yield
    except BaseException as err:
        if not is_disk_full(err):
            raise
        removed = remove_incomplete_checkpoints(Path(out))
        raise RunFault(f"{out}: no space left on device" + (f" (removed the half-written {', '.join(removed)})"
                       if removed else "") + f"; free space, then continue with --output_dir {out} "
                       "--resume_from_checkpoint true") from None
