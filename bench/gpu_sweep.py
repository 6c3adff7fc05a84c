"""One-shot GPU sweep: the full-length comparison of the default and its challengers, several runs
sharing one GPU at once, inside a fixed time budget.

    python bench/gpu_sweep.py                                   # on a GPU machine: 20 epochs, early stopping
    bash bench/gpu_session.sh                                   # the same as one call of the device tool
    python bench/gpu_sweep.py --smoke --out /tmp/sweep          # the same code path on a CPU, tiny settings

Every run is ``train_hf.py`` (so the GPU defaults apply: bf16/fp16, TF32, loader workers) on the frame-
grouped split of the shared file, evaluated and checkpointed every epoch with early stopping on
validation task mIoU. ``--concurrent`` runs share the GPU; a run still going when ``--budget_s`` runs
out gets SIGTERM, which makes it save a checkpoint and stop (its best epoch so far is reported, marked
"stopped"). GPU memory per run is the peak ``nvidia-smi`` reports for its process. Writes
``<out>/gpu_sweep.json`` and ``<out>/gpu_sweep.md`` (the defaults: ``bench/results/`` and ``docs/``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import SHARED_DATA, command_line, machine  # noqa: E402
from bench.full_length import CLASSES, check_runs, newest_state, run_flags  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402

#: the contenders: the default and its best challengers of the quality work (docs/results.md)
#: (train_hf.py's default first, with shifted frame reads; the default of before frame_shift; the namesake
#: SegFormer-b0 on the default recipe). ``upernet-r18:combo_logit_adj_x2`` (tiles x2, the big-rock lever too costly
#: for a CPU) ran in the first GPU sweep; with it, 8 runs of 20 epochs need ~9.5 min of an H200 (docs/gpu.md)
#: the default model and recipe first (train_hf.py's since issue 19's switch), then the same recipe on the default of
#: before (UperNet-R18 at x1) and on SegFormer-b0
DEFAULT_RUNS = ["upernet-r18-x1.5-h96:combo_logit_adj_frame_shift_p1", "upernet-r18:combo_logit_adj_frame_shift_p1",
                "segformer-b0:combo_logit_adj_frame_shift_p1"]
#: flags that pin a precision: the CPU sweeps pin float32 so that stored rows keep their meaning; on a GPU the
#: machine's default (bf16 autocast where supported, training/devices.py) is what users get, so it is dropped
PRECISION_FLAGS = ("--bf16", "--fp16")


def gpu_flags(flags: list[str]) -> list[str]:
    """A recipe's flags without a precision pin, so that ``train_hf.py``'s GPU default applies."""
    out, skip = [], False
    for i, flag in enumerate(flags):
        if skip:
            skip = False
            continue
        if flag in PRECISION_FLAGS:
            skip = i + 1 < len(flags) and not flags[i + 1].startswith("--")
            continue
        out.append(flag)
    return out


def loader_settings(concurrent: int, cores: int | None = None) -> list[str]:
    """Loader workers and torch threads per run so that ``concurrent`` runs share the machine's cores: each
    run's main process drives the GPU on one core, its workers take the rest of its share (at least one)."""
    cores = len(os.sched_getaffinity(0)) if cores is None else cores
    workers = max(1, cores // concurrent - 1)
    return ["--dataloader_num_workers", str(workers), "--torch_threads", "1"]


def gpu_memory_by_pid() -> dict[int, float]:
    """MiB of GPU memory per process, as nvidia-smi reports it (empty without a GPU)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    mem = {}
    for line in out.strip().splitlines():
        try:
            pid, used = (x.strip() for x in line.split(","))
            mem[int(pid)] = float(used)
        except ValueError:
            continue
    return mem


def command(spec: str, seed: int, args, out: Path) -> list[str]:
    _, flags = run_flags(spec)
    cmd = [sys.executable, str(ROOT / "train_hf.py"), "--output_dir", str(out), *gpu_flags(flags), "--seed", str(seed),
           "--num_train_epochs", str(args.epochs), "--per_device_train_batch_size", "32",
           "--eval_strategy", "epoch", "--save_strategy", "epoch", "--save_total_limit", "2",
           "--load_best_model_at_end", "true", "--early_stopping_patience", str(args.patience),
           "--logging_steps", "50", "--disable_tqdm", "true", "--report_to", "none", "--overwrite", "true"]
    if args.smoke:
        # a third of the training frames: the same code path, epochs a third as long (the suite runs this)
        cmd += ["--tiny", "true", "--per_device_train_batch_size", "8", "--torch_threads", "1",
                "--train_frames", "0:0.3"]
    else:
        cmd += ["--data", args.data, *loader_settings(args.concurrent)]
    return cmd


def result(out: Path, name: str, seed: int, seconds: float, mem_mib: float | None, state: str,
           batch: int = 32) -> dict:
    """One run's row: from metrics.json when it finished, else from its newest checkpoint's history."""
    metrics = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").exists() else None
    saved = newest_state(out)
    history = saved["log_history"] if saved else []
    evals = [e for e in history if "eval_task_mean_iou" in e]
    best = max(evals, key=lambda e: e["eval_task_mean_iou"]) if evals else None
    steps = saved["global_step"] if saved else 0
    return {
        "run": name, "seed": seed, "state": state if metrics is None else "finished",
        "epochs": evals[-1]["epoch"] if evals else 0, "seconds": round(seconds, 1),
        # the run's own steps over its training loop's time (not the Trainer's planned-samples figure, which
        # overstates a run that early stopping ended)
        "train_samples_per_s": round(metrics["global_step"] * batch / metrics["train_runtime_s"], 3)
        if metrics and metrics.get("train_runtime_s") else None,
        # training samples over the run's whole wall time (start-up, evaluations and checkpoints included), from
        # its newest checkpoint: defined for runs stopped by the budget too
        "wall_samples_per_s": round(steps * batch / seconds, 1) if seconds > 0 and steps else None,
        "gpu_memory_mib": mem_mib,
        "best": None if best is None else {"epoch": best["epoch"], "task_mean_iou": best["eval_task_mean_iou"],
                                           **{c: best.get(f"eval_iou_{c}") for c in CLASSES}},
        # a finished run's own closing score: its best checkpoint after the logit adjustment (what it publishes)
        "final": None if metrics is None else {"task_mean_iou": metrics["validation"]["task_mean_iou"],
                                               "tau": metrics.get("logit_adjustment_tau"),
                                               **{c: metrics["validation"].get(f"iou_{c}") for c in CLASSES}},
    }


def sweep(args) -> list[dict]:
    out_root = Path(args.out)
    out_root.mkdir(parents=True, exist_ok=True)
    queue = [(spec, seed) for seed in args.seeds for spec in args.runs]
    running: dict[int, tuple] = {}
    rows, peak = [], {}
    t0 = time.time()
    while queue or running:
        while queue and len(running) < args.concurrent and time.time() - t0 < args.budget_s:
            spec, seed = queue.pop(0)
            name = run_flags(spec)[0]
            out = out_root / f"{name}_s{seed}"
            log = open(out_root / f"{name}_s{seed}.log", "w")
            proc = subprocess.Popen(command(spec, seed, args, out), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
            running[proc.pid] = (proc, name, seed, out, time.time(), log)
            print(f"[gpu-sweep] started {name} seed {seed} (pid {proc.pid})", flush=True)
        if not running and queue:  # the budget is spent before these could start
            for spec, seed in queue:
                rows.append({"run": run_flags(spec)[0], "seed": seed, "state": "not started (budget)"})
            break
        for pid, mib in gpu_memory_by_pid().items():
            peak[pid] = max(peak.get(pid, 0.0), mib)
        over = time.time() - t0 > args.budget_s
        for pid, (proc, name, seed, out, started, log) in list(running.items()):
            if over and proc.poll() is None and not getattr(proc, "_stopped", False):
                proc.send_signal(signal.SIGTERM)  # saves a checkpoint at the step's end and stops
                proc._stopped = time.time()
            elif getattr(proc, "_stopped", False) and proc.poll() is None and time.time() - proc._stopped > args.grace_s:
                proc.kill()  # past its grace: the sweep's report must still be written in time
                proc._killed = True
            if proc.poll() is not None:
                log.close()
                state = ("killed (budget + grace)" if getattr(proc, "_killed", False) else "stopped (budget)"
                         if getattr(proc, "_stopped", False) else f"exit {proc.returncode}")
                rows.append(result(out, name, seed, time.time() - started, peak.get(pid), state,
                                   batch=8 if args.smoke else 32))
                del running[pid]
                b = rows[-1]["best"]
                score = "-" if b is None else f"{b['task_mean_iou']:.4f}"
                print(f"[gpu-sweep] {name} seed {seed}: {rows[-1]['state']}, best task mIoU {score} after "
                      f"{rows[-1]['seconds']:.0f} s", flush=True)
        time.sleep(args.poll_s)
    return rows


def versions() -> dict:
    """The software the sweep ran on (a GPU machine's image may differ from the project's pins)."""
    import importlib.metadata as md

    out = {"python": sys.version.split()[0]}
    for name in ("torch", "transformers", "datasets", "accelerate", "timm", "albumentations"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def _num(v, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def render(report: dict) -> str:
    """The markdown table of a sweep's report (``gpu_sweep.json``)."""
    m, rows = report["machine"], report["rows"]
    gpu = m["gpu"] or f"no GPU ({m['cpu']}, {m['cpu_capability']})"
    software = ", ".join(f"{k} {v}" for k, v in report.get("versions", {}).items() if v)
    lines = [f"`{report['command']}` on {gpu}: {report['concurrent']} runs at once, "
             f"{report['epochs']}-epoch schedule, early stopping patience {report['patience']}, budget "
             f"{report['budget_s']:.0f} s; the sweep took {report['seconds']:.0f} s.", "",
             f"Software: {software}.", "",
             "Samples/s: a finished run's steps x batch over its training loop's time (evaluations and checkpoints inside it); "
             "wall: over the run's whole time, start-up, evaluations and checkpoints included.", "",
             "Best: the best per-epoch evaluation (per class at that epoch); final: a finished run's closing score, "
             "its best checkpoint after the logit adjustment (tau), what it publishes.", "",
             "| run | seed | state | epochs | time s | samples/s | wall samples/s | GPU MiB | best task mIoU | at epoch | "
             + " | ".join(c.replace("_", " ") for c in CLASSES) + " | final task mIoU | tau | final big rock |",
             "|---|---|---|---|---|---|---|---|---|---|" + "---|" * len(CLASSES) + "---|---|---|"]
    for r in rows:
        b = r.get("best")
        cells = [r["run"], str(r["seed"]), r["state"], f"{r.get('epochs', 0):.0f}", f"{r.get('seconds', 0):.0f}",
                 f"{r['train_samples_per_s']:.0f}" if r.get("train_samples_per_s") else "-",
                 f"{r['wall_samples_per_s']:.0f}" if r.get("wall_samples_per_s") else "-",
                 f"{r['gpu_memory_mib']:.0f}" if r.get("gpu_memory_mib") else "-",
                 f"{b['task_mean_iou']:.3f}" if b else "-", f"{b['epoch']:.0f}" if b else "-",
                 *([_num(b[c]) for c in CLASSES] if b else ["-"] * len(CLASSES))]
        f = r.get("final")
        cells += ([_num(f["task_mean_iou"], 4), str(f["tau"]), _num(f["big_rock"])] if f else ["-", "-", "-"])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def rerender(json_path: Path, args) -> None:
    """Rows rebuilt by :func:`result` from the run folders under ``--out`` (time, GPU memory and state as the
    sweep recorded them), written back to ``json_path`` and beside it as ``.md`` (``docs/gpu_sweep.md`` for
    the stored sweep)."""
    report = json.loads(json_path.read_text())
    runs = Path(args.out)
    report["rows"] = [result(runs / f"{r['run']}_s{r['seed']}", r["run"], r["seed"], r["seconds"], r.get("gpu_memory_mib"),
                             r["state"]) if "seconds" in r else r for r in report["rows"]]
    json_path.write_text(json.dumps(report, indent=1))
    md_path = ROOT / "docs" / "gpu_sweep.md" if json_path.resolve() == ROOT / "bench" / "results" / "gpu_sweep.json" \
        else json_path.with_suffix(".md")
    md_path.write_text(render(report))
    print(md_path.read_text())


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", default=DEFAULT_RUNS, help="MODEL:RECIPE (bench/full_length.py's)")
    p.add_argument("--seeds", type=int, nargs="+", default=[42, 0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--patience", type=int, default=None,
                   help="early stopping patience in evaluations (default: 10, or a third of --epochs when larger: "
                        "the first H200 sweep's 60-epoch runs swung by 0.1 between epochs at the high early rate, "
                        "and one stopped after 11 epochs on its epoch-1 score)")
    p.add_argument("--concurrent", type=int, default=8, help="runs sharing the GPU at once (each gets its share of the cores)")
    p.add_argument("--budget_s", type=float, default=420, help="wall time after which running runs are stopped")
    p.add_argument("--grace_s", type=float, default=60, help="seconds a stopped run gets to save and exit before it is killed")
    p.add_argument("--poll_s", type=float, default=5)
    p.add_argument("--data", default=str(SHARED_DATA))
    p.add_argument("--out", default=None, help="run folders + JSON + md (default: bench/results/gpu_sweep, docs/)")
    p.add_argument("--rerender", metavar="JSON", help="rebuild the rows of a sweep's JSON from its run folders (--out: "
                   "where they are now, e.g. unpacked from the GPU machine's runs.tar.gz) and write JSON + md again")
    p.add_argument("--smoke", action="store_true", help="tiny models on a third of the embedded sample's training frames, 2 epochs, CPU-friendly")
    args = p.parse_args()
    check_runs(p, args.runs)
    if args.patience is None:
        args.patience = max(10, args.epochs // 3)
    if args.smoke:
        args.epochs, args.seeds, args.concurrent, args.poll_s = 2, [0], 2, 1
        args.runs = args.runs[:2]
    elif not args.rerender and not Path(args.data).is_file():
        p.error(f"--data {args.data}: no such file")
    if args.rerender:
        if not Path(args.rerender).is_file():
            p.error(f"--rerender {args.rerender}: no such file")
        if not args.out:
            p.error("--rerender needs --out, the folder holding the sweep's run folders")
        return rerender(Path(args.rerender), args)
    runs_dir = Path(args.out) if args.out else ROOT / "bench" / "results" / "gpu_sweep"
    json_path = runs_dir / "gpu_sweep.json" if args.out else ROOT / "bench" / "results" / "gpu_sweep.json"
    md_path = runs_dir / "gpu_sweep.md" if args.out else ROOT / "docs" / "gpu_sweep.md"
    args.out = str(runs_dir)
    t0 = time.time()
    rows = sweep(args)
    m = machine()
    total = time.time() - t0
    report = {"command": command_line(), "machine": m,
              "versions": versions(), "epochs": args.epochs, "patience": args.patience, "concurrent": args.concurrent,
              "budget_s": args.budget_s, "seconds": round(total, 1), "rows": rows}
    json_path.write_text(json.dumps(report, indent=1))
    md_path.write_text(render(report))
    print(md_path.read_text())
    print(f"saved {json_path} and {md_path}")


if __name__ == "__main__":
    main()
