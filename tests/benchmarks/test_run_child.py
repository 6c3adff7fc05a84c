"""bench.common.run_child: a stopped runner stops its training child cleanly instead of leaving it orphaned."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# a stand-in for train_hf.py: records each stop signal it receives, then exits as GracefulStop's run does
CHILD = textwrap.dedent("""
    import os, signal, sys, time
    log, ready, code = sys.argv[1], sys.argv[2], int(sys.argv[3])
    got = []
    def on(signum, frame):
        got.append(signal.Signals(signum).name)
        with open(log, "a") as f:
            f.write(got[-1] + "\\n")
    signal.signal(signal.SIGTERM, on)
    signal.signal(signal.SIGINT, on)
    with open(ready, "w") as f:
        f.write(str(os.getpid()))
    deadline = time.time() + (0.2 if code != 99 else 60)
    while time.time() < deadline and not got:
        time.sleep(0.02)
    time.sleep(0.5)  # the step's end and its checkpoint: a second signal would arrive in here
    sys.exit(128 + signal.Signals[got[0]] if got else code)
""")

RUNNER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from bench.common import run_child
    code = run_child([sys.executable, *sys.argv[2:]])
    print("next run", flush=True)
    sys.exit(code)
""")


def terminal_defaults():
    """The runner starts with a terminal's signal dispositions, whatever the test process inherited: under
    ``nohup`` SIGHUP is ignored, and a command started with ``&`` by a script has SIGINT ignored, which the runner
    (rightly) keeps ignoring; then the tests below would check nothing of a user's terminal."""
    for s in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(s, signal.SIG_DFL)


def start(tmp_path, code: int, nohup: bool = False):
    (tmp_path / "child.py").write_text(CHILD)
    ready = tmp_path / "ready"
    cmd = [sys.executable, "-c", RUNNER, str(ROOT), str(tmp_path / "child.py"), str(tmp_path / "signals.log"),
           str(ready), str(code)]
    runner = subprocess.Popen(["nohup", *cmd] if nohup else cmd, stdout=subprocess.PIPE, text=True,
                              start_new_session=True, preexec_fn=terminal_defaults)
    deadline = time.time() + 120
    while not (ready.exists() and ready.read_text()) and runner.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert ready.exists(), "the child never started"
    return runner, int(ready.read_text())


def received(tmp_path) -> list[str]:
    log = tmp_path / "signals.log"
    return log.read_text().split() if log.exists() else []


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_child_exit_code_comes_back_and_the_runner_goes_on(tmp_path):
    runner, _ = start(tmp_path, code=3)
    out, _ = runner.communicate(timeout=120)
    assert runner.returncode == 3
    assert "next run" in out
    assert received(tmp_path) == []


def test_sigterm_to_the_runner_is_passed_on_once_and_stops_the_queue(tmp_path):
    runner, child = start(tmp_path, code=99)
    runner.send_signal(signal.SIGTERM)
    out, _ = runner.communicate(timeout=120)
    assert received(tmp_path) == ["SIGTERM"]  # the child saved and stopped; it was not left training
    assert gone(child)
    assert runner.returncode == 128 + signal.SIGTERM
    assert "next run" not in out


def test_sighup_is_passed_on_as_sigterm(tmp_path):
    runner, child = start(tmp_path, code=99)
    runner.send_signal(signal.SIGHUP)
    runner.communicate(timeout=120)
    assert received(tmp_path) == ["SIGTERM"]
    assert gone(child)
    assert runner.returncode == 128 + signal.SIGHUP


@pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX")
def test_ctrl_c_reaches_the_child_once_not_twice(tmp_path):
    runner, child = start(tmp_path, code=99)
    os.killpg(runner.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    out, _ = runner.communicate(timeout=120)
    assert received(tmp_path) == ["SIGINT"]  # a second one would stop train_hf.py before its checkpoint
    assert gone(child)
    assert runner.returncode == 128 + signal.SIGINT
    assert "next run" not in out


def test_under_nohup_a_sighup_still_does_nothing(tmp_path):
    """``setsid nohup python bench/full_length.py ... &``, as the long runs are started: a closed terminal's SIGHUP is
    ignored by the runner and its training, as nohup promises."""
    runner, child = start(tmp_path, code=99, nohup=True)
    runner.send_signal(signal.SIGHUP)
    time.sleep(1.5)
    assert runner.poll() is None and not gone(child)
    assert received(tmp_path) == []
    runner.send_signal(signal.SIGTERM)  # and it still stops cleanly
    runner.communicate(timeout=120)
    assert received(tmp_path) == ["SIGTERM"] and gone(child)
