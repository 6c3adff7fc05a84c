"""The suite's forked runner (tests/forked.py) shows what a real subprocess shows: its own pid, exit code,
stdout and stderr, working directory and environment, the Hub a test points it at, and signals."""

import gc
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests import forked

PROBE = "-m tests.forked_probe"


def _probe(argv):
    import datasets.config
    import huggingface_hub.hf_api as hf_api
    from huggingface_hub import constants

    print(json.dumps({"pid": os.getpid(), "cwd": os.getcwd(), "argv": argv, "marker": os.environ.get("PROBE_MARKER"),
                      "endpoint": constants.ENDPOINT, "hf_home": constants.HF_HOME,
                      "datasets_endpoint": datasets.config.HF_ENDPOINT, "api_endpoint": hf_api.api.endpoint,
                      "frozen": gc.get_freeze_count()}))
    print("to stderr", file=sys.stderr)
    if argv and argv[0] == "sleep":
        time.sleep(60)
    return 3


@pytest.fixture
def probe(monkeypatch):
    if not forked.can_fork([sys.executable, str(forked.ROOT / "train_hf.py")]):
        pytest.skip("this process runs more than one torch thread: commands run as subprocesses here")
    monkeypatch.setitem(forked.ENTRY_POINTS, PROBE, "tests.test_forked:_probe")
    return [sys.executable, "-m", "tests.forked_probe"]


def test_a_forked_command_is_its_own_process_with_its_own_streams_code_cwd_and_env(probe, tmp_path):
    env = {**os.environ, "PROBE_MARKER": "child"}
    proc = forked.run([*probe, "a", "b"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    seen = json.loads(proc.stdout)
    assert proc.returncode == 3 and proc.stderr.strip() == "to stderr"
    assert seen["pid"] != os.getpid() and seen["cwd"] == str(tmp_path) and seen["argv"] == ["a", "b"]
    assert seen["marker"] == "child" and "PROBE_MARKER" not in os.environ  # the parent is untouched


def test_a_forked_child_reads_the_hub_the_test_points_it_at(probe, tmp_path):
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf")}
    proc = forked.run(probe, capture_output=True, text=True, env=env, timeout=60)
    seen = json.loads(proc.stdout)
    assert seen["endpoint"] == seen["datasets_endpoint"] == seen["api_endpoint"] == "http://127.0.0.1:9"
    assert seen["hf_home"] == str(tmp_path / "hf")
    from huggingface_hub import constants

    assert constants.ENDPOINT != "http://127.0.0.1:9"  # the parent's settings are its own


def test_the_child_inherits_the_workers_heap_frozen_and_the_worker_does_not(probe, monkeypatch):
    monkeypatch.delenv(forked.GC_FREEZE_ENV, raising=False)
    before, tracked = gc.get_freeze_count(), len(gc.get_objects())
    proc = forked.run(probe, capture_output=True, text=True, timeout=60)
    # the child's collections skip what it inherited: the objects the worker tracked before the fork, less the
    # garbage a collection may free on the way to the fork
    assert json.loads(proc.stdout)["frozen"] >= 0.95 * tracked
    assert gc.get_freeze_count() == before
    monkeypatch.setenv(forked.GC_FREEZE_ENV, "0")
    proc = forked.run(probe, capture_output=True, text=True, timeout=60)
    assert json.loads(proc.stdout)["frozen"] == before


def test_a_bench_script_named_by_its_path_runs_forked_as_that_script(probe):
    script = forked.ROOT / "bench" / "run_noise.py"
    assert forked.can_fork([sys.executable, str(script)])
    assert not forked.can_fork([sys.executable, "bench/run_noise.py"])  # a relative path depends on the cwd
    proc = forked.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: run_noise.py"), proc.stdout[:300]  # its argv[0]


def test_a_signal_reaches_the_forked_child(probe):
    proc = forked.Popen([*probe, "sleep"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    assert proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


def test_other_commands_and_import_time_settings_run_as_real_subprocesses():
    assert not forked.can_fork([sys.executable, "-c", "pass"])
    assert not forked.can_fork([sys.executable, str(forked.ROOT / "train_hf.py")],
                               env={**os.environ, "OMP_NUM_THREADS": "7"})
    proc = forked.run([sys.executable, "-c", "import sys; print('real'); sys.exit(4)"], capture_output=True, text=True)
    assert proc.returncode == 4 and proc.stdout.strip() == "real"
