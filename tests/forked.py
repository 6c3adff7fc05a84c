"""Run the package's commands in a forked copy of the test process instead of a new interpreter.

A ``train_hf.py`` subprocess spends 10-25 s importing torch, transformers' Trainer, datasets, timm and
albumentations before its first step; the suite started ~70 of them. A child forked from a test worker
that has already imported them starts at once, and is still a process of its own: its own pid, exit
code, signals, working directory, environment and stdout/stderr files, so tests keep asserting on what
a user's process would show. :func:`run` and :class:`Popen` take the same command lines as
``subprocess.run`` / ``subprocess.Popen``.

A command falls back to a real subprocess where a fork could not show the same thing:

- the command is not one of the package's entry points (``ENTRY_POINTS``) or a bench script named by its absolute
  path (``BENCH``),
- the environment changes a variable that a library reads when it is imported (``IMPORT_TIME_ENV``:
  thread counts, ...): the forked child would keep the parent's value. The Hub's own variables
  (``HUB_ENV``: endpoint, cache home, token) are the exception: the child re-reads them
  (:func:`_reread_hub_settings`) and refuses to run if huggingface_hub still points elsewhere,
- the parent runs more than one torch thread (an OpenMP pool does not survive a fork), or
  ``MARS_SEGFORMER_TEST_SUBPROCESS=1`` asks for subprocesses everywhere.
"""

from __future__ import annotations

import gc
import importlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import weakref
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: how a command line names an entry point -> "module:function" taking argv (without the program)
ENTRY_POINTS = {
    str(ROOT / "train_hf.py"): "mars_segformer.training.command:main",
    str(ROOT / "push_to_hub.py"): "mars_segformer.hub.cli:push_main",
    "-m mars_segformer.predict": "mars_segformer.predict:main",
    "-m mars_segformer.pretrain": "mars_segformer.pretrain:main",
    "-m mars_segformer.self_train": "mars_segformer.self_train:main",
    "-m mars_segformer": "mars_segformer.cli:main",
}
#: the bench scripts (``python bench/NAME.py``, named by their absolute path): ``bench.NAME:main()``, whose ``main``
#: reads ``sys.argv`` as a script's does
BENCH = ROOT / "bench"

#: prefixes of environment variables read when a library is imported, not when it is called
IMPORT_TIME_ENV = ("HF_", "HUGGINGFACE", "TRANSFORMERS", "TORCH", "PYTORCH", "OMP_", "MKL_", "OPENBLAS", "CUDA",
                   "ACCELERATE", "PYTHON", "LD_", "XDG_", "TOKENIZERS", "TIMM")
#: the Hub's variables, which the child re-reads (:func:`_reread_hub_settings`) instead of falling back
HUB_ENV = ("HF_ENDPOINT", "HF_HOME", "HF_TOKEN", "HF_HUB_OFFLINE", "HF_HUB_DISABLE_XET")
#: modules whose top level copies the Hub's variables; reloaded in that order in a child with other values
HUB_CONFIG_MODULES = ("huggingface_hub.constants", "datasets.config", "evaluate.config")

FORCE_SUBPROCESS_ENV = "MARS_SEGFORMER_TEST_SUBPROCESS"
#: ``0`` forks without freezing the worker's heap first (``bench/fork_gc.py`` times both ways)
GC_FREEZE_ENV = "MARS_SEGFORMER_TEST_GC_FREEZE"


def _entry(cmd) -> tuple[str, list[str]] | None:
    """The entry point and its arguments for ``cmd``, or None where it names none."""
    cmd = [str(c) for c in cmd]
    if len(cmd) < 2 or cmd[0] != sys.executable:
        return None
    if cmd[1] in ENTRY_POINTS:
        return ENTRY_POINTS[cmd[1]], cmd[2:]
    script = Path(cmd[1])
    if script.is_absolute() and script.parent == BENCH and script.suffix == ".py" and script.stem != "__init__":
        return f"bench.{script.stem}:main()", cmd[2:]
    if cmd[1] == "-m" and len(cmd) > 2 and f"-m {cmd[2]}" in ENTRY_POINTS:
        return ENTRY_POINTS[f"-m {cmd[2]}"], cmd[3:]
    return None


def _env_changes_imports(env: dict | None) -> bool:
    if env is None:
        return False
    keys = set(env) | set(os.environ)
    return any(env.get(k) != os.environ.get(k) for k in keys
               if k.upper().startswith(IMPORT_TIME_ENV) and k not in HUB_ENV)


def _reread_hub_settings() -> None:
    """Make the Hub clients of a forked child read its own ``HF_ENDPOINT`` / ``HF_HOME`` / token, which
    huggingface_hub, datasets and evaluate copied into module constants when the parent imported them."""
    import huggingface_hub.hf_api as hf_api

    for name in HUB_CONFIG_MODULES:
        if name in sys.modules:
            importlib.reload(sys.modules[name])
    from huggingface_hub import constants

    hf_api.api.endpoint = constants.ENDPOINT  # the module-level functions (create_repo, ...) are its methods
    hub_utils = sys.modules.get("transformers.utils.hub")
    if hub_utils is not None:
        hub_utils.HF_MODULES_CACHE = os.getenv("HF_MODULES_CACHE", os.path.join(constants.HF_HOME, "modules"))
    expected = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    if constants.ENDPOINT.rstrip("/") != expected:  # never run against another Hub than the test's
        raise RuntimeError(f"forked child: huggingface_hub still points at {constants.ENDPOINT}, not {expected}")


def can_fork(cmd, env=None) -> bool:
    """Whether ``cmd`` with ``env`` runs in a forked child (see the module's docstring)."""
    if os.environ.get(FORCE_SUBPROCESS_ENV) == "1" or not hasattr(os, "fork"):
        return False
    if _entry(cmd) is None or _env_changes_imports(env):
        return False
    import torch

    return torch.get_num_threads() == 1


def _renew_thread_pool() -> None:
    """Let torch replace its inherited thread pool now, while the child has one thread.

    After a fork torch marks its pthreadpool as corrupt (its threads stayed in the parent) and replaces it on
    the next use. That replacement is not guarded against a second thread using the pool at the same moment,
    which then gets no pool: ``INTERNAL ASSERT FAILED ... Invalid thread pool!`` in ``set_num_threads``, as
    the autograd engine's threads call it when they start. ``set_num_threads`` with the current count makes
    the replacement happen here instead, before the command starts any thread.
    """
    import torch

    torch.set_num_threads(torch.get_num_threads())


def _run_child(entry: str, argv: list[str], cwd, env, out_path: str, err_path: str) -> int:
    """In the forked child: become the command's process, run it, return its exit code."""
    if cwd is not None:
        os.chdir(cwd)
    for fd, path in ((1, out_path), (2, err_path)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    old = {id(sys.stdout), id(sys.stderr), id(sys.__stdout__), id(sys.__stderr__)}
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
    import logging

    # handlers made in the parent (transformers', datasets') still hold the parent's captured streams
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and id(handler.stream) in old:
                handler.setStream(sys.stderr)
    _renew_thread_pool()
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:  # a state made by an earlier in-process run of the parent is not this process's
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)
    except ImportError:
        pass
    module, func = entry.split(":")
    script = func.endswith("()")  # a bench script: main() reads sys.argv, whose first item is the script's path
    func = func.removesuffix("()")
    sys.argv = [str(BENCH / f"{module.rsplit('.', 1)[-1]}.py") if script else module, *argv]
    try:
        if env is not None:
            hub_changed = any(env.get(k) != os.environ.get(k) for k in HUB_ENV)
            os.environ.clear()
            os.environ.update(env)
            if hub_changed:
                _reread_hub_settings()
        main = getattr(importlib.import_module(module), func)
        code = main() if script else main(argv)
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        traceback.print_exc()
        code = 1
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    return code


class Popen:
    """``subprocess.Popen`` for an entry-point command, forked (or a real subprocess where it cannot be)."""

    def __init__(self, cmd, stdout=None, stderr=None, text=False, cwd=None, env=None, **kwargs):
        self.args = [str(c) for c in cmd]
        self.text = text
        self._proc = None
        self.returncode = None
        if not can_fork(cmd, env):
            self._proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, text=text, cwd=cwd, env=env, **kwargs)
            self.pid = self._proc.pid
            return
        self._dir = tempfile.mkdtemp(prefix="forked-")
        self._paths = {}
        for name, want in (("stdout", stdout), ("stderr", stderr)):
            self._paths[name] = os.devnull if want in (None, subprocess.DEVNULL) else os.path.join(self._dir, name)
        entry, argv = _entry(cmd)
        sys.stdout.flush()
        sys.stderr.flush()
        # the child's collections skip the objects it inherits (the worker's whole heap: 0.3-0.5 s a full
        # collection, and a write to every page it touches), as Python's gc docs advise for fork without exec;
        # the worker itself unfreezes at once
        freeze = os.environ.get(GC_FREEZE_ENV, "1") != "0"
        if freeze:
            gc.freeze()
        pid = os.fork()
        if pid == 0:  # the child never returns into the test
            code = 1
            try:
                code = _run_child(entry, argv, cwd, env, self._paths["stdout"], self._paths["stderr"])
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    import logging

                    logging.shutdown()
                finally:
                    os._exit(code & 0xFF if code >= 0 else 1)
        if freeze:
            gc.unfreeze()
        self.pid = pid
        self.stdout = self.stderr = None
        # the captured output's folder goes after communicate(), or when this object does (a test that only
        # waits, or a timeout)
        self._remove_dir = weakref.finalize(self, shutil.rmtree, self._dir, True)

    def poll(self):
        if self._proc is not None:
            self.returncode = self._proc.poll()
            return self.returncode
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout=None):
        if self._proc is not None:
            self.returncode = self._proc.wait(timeout)
            return self.returncode
        deadline = None if timeout is None else time.time() + timeout
        while self.poll() is None:
            if deadline is not None and time.time() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(0.05)
        return self.returncode

    def send_signal(self, sig):
        if self._proc is not None:
            return self._proc.send_signal(sig)
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self):
        self.send_signal(signal.SIGTERM)

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def _read(self, name):
        if self._paths[name] == os.devnull:  # not captured (None or DEVNULL)
            return None
        data = Path(self._paths[name]).read_bytes() if os.path.exists(self._paths[name]) else b""
        return data.decode(errors="replace") if self.text else data

    def communicate(self, timeout=None):
        if self._proc is not None:
            out = self._proc.communicate(timeout=timeout)
            self.returncode = self._proc.returncode
            return out
        self.wait(timeout)
        out, err = self._read("stdout"), self._read("stderr")
        self._remove_dir()
        return out, err


def run(cmd, *, capture_output=False, text=False, timeout=None, cwd=None, env=None, check=False, **kwargs):
    """``subprocess.run`` for an entry-point command (forked where it can be; see :class:`Popen`)."""
    pipe = subprocess.PIPE if capture_output else kwargs.pop("stdout", None)
    err = subprocess.PIPE if capture_output else kwargs.pop("stderr", None)
    proc = Popen(cmd, stdout=pipe, stderr=err, text=text, cwd=cwd, env=env, **kwargs)
    try:
        out, errs = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, errs)
    if check:
        done.check_returncode()
    return done
