"""CPU threads: accelerate launch's OMP_NUM_THREADS=1 must not leave a single CPU process on one core."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mars_segformer.training.run import main
from mars_segformer.training.threads import ACCELERATE_LAUNCH_MARKER, available_cores, choose_threads

ROOT = Path(__file__).resolve().parents[2]
LAUNCHED = {ACCELERATE_LAUNCH_MARKER: "NO", "OMP_NUM_THREADS": "1"}


#: the cores this process may use, read here from /proc (the kernel's affinity list), not from the code under test
def _cores_from_proc() -> int:
    text = Path("/proc/self/status").read_text()
    spec = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Cpus_allowed_list"))
    return sum(int(b) - int(a) + 1 if "-" in part else 1
               for part in spec.split(",") for a, _, b in [part.partition("-")])


CORES = _cores_from_proc()


@pytest.mark.parametrize(
    "requested,on_cpu,env,busy,expected",
    [
        ("auto", True, LAUNCHED, 0, CORES),                                          # one process: every core
        ("auto", True, {**LAUNCHED, "LOCAL_WORLD_SIZE": "2"}, 0, max(1, CORES // 2)),  # shared, never oversubscribed
        ("auto", True, LAUNCHED, 1, max(1, CORES - 1)),                              # a busy core is left alone
        ("auto", True, LAUNCHED, CORES, 1),                                          # all busy: still one thread
        ("auto", True, {}, 1, max(1, CORES - 1) if CORES > 1 else None),             # plain python, no OMP set
        ("auto", True, {}, 0, None),                                                 # idle: torch's own (all cores)
        ("auto", True, {"OMP_NUM_THREADS": "1"}, 1, None),                           # plain python: the user's setting stands
        ("auto", False, LAUNCHED, 1, None),                                          # GPU: torch's choice
        ("3", True, LAUNCHED, 2, 3),                                                 # explicit always wins
        ("1", False, {}, 0, 1),
    ],
)
def test_choose_threads(requested, on_cpu, env, busy, expected):
    assert choose_threads(requested, on_cpu, env, busy=busy) == expected


def test_busy_cores_sees_a_busy_loop_on_the_only_core_it_may_use():
    """Measurer and a busy loop pinned to the same core (child processes): that core counts as busy.
    The oracle is the kernel's scheduler: the loop holds the core whenever the measurer sleeps."""
    core = sorted(os.sched_getaffinity(0))[0]
    loop = subprocess.Popen([sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{core}}})\nwhile True: pass"])
    try:
        code = (f"import os, time; os.sched_setaffinity(0, {{{core}}}); time.sleep(0.5); "
                "from mars_segformer.training.threads import busy_cores; print(busy_cores(1.0))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    finally:
        loop.kill()
        loop.wait()
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "1"


def test_available_cores_follows_the_affinity_mask():
    """Pinned to one core (taskset-like, in a child process), the count is 1, whatever the machine has."""
    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
            "from mars_segformer.training.threads import available_cores; print(available_cores())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "1"
    assert available_cores() == CORES


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_bad_torch_threads_is_a_clear_error(tmp_path, capsys, value):
    out = tmp_path / "run"
    assert main(["--output_dir", str(out), "--max_steps", "1", "--torch_threads", value]) == 2
    assert f"--torch_threads must be 'auto' or a positive integer, got {value!r}" in capsys.readouterr().err
    assert not out.exists()


def test_accelerate_launch_trains_on_every_core(tmp_path):
    """Under ``accelerate launch`` (which exports OMP_NUM_THREADS=1) the start-up summary reports, and
    metrics.json records, all available cores for the single CPU process."""
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", str(ROOT / "train_hf.py"), "--output_dir", str(out),
           "--model", "unet", "--tiny", "--max_steps", "1", "--eval_strategy", "no", "--save_strategy", "no",
           "--load_best_model_at_end", "false", "--per_device_train_batch_size", "4", "--disable_tqdm", "true",
           "--logit_adjustment", "0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = next(line for line in proc.stdout.splitlines() if line.startswith("data: "))
    # every core, unless other work (another test, a background job) kept some busy at start: then the line says so
    m = re.search(r"device: cpu(?:, bf16 autocast)?, (\d+) torch thread\(s\) x 1 process\(es\)(?: \(auto: (\d+) of (\d+) cores busy)?",
                  summary)
    assert m, summary
    threads, busy = int(m.group(1)), int(m.group(2) or 0)
    assert threads == max(1, CORES - busy) and (m.group(3) is None or int(m.group(3)) == CORES), summary
    assert "model: unet (MarsUNetForSemanticSegmentation" in summary and "validation " in summary
    assert json.loads((out / "metrics.json").read_text())["torch_threads"] == threads
