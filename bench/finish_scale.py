"""Finish at a higher resolution: a few fine-tuning epochs on tiles upsampled before the model.

    python bench/finish_scale.py --runs upernet-r18:combo_logit_adj_frame_shift_bf16 --seeds 0 --scales 2 1 \\
        --epochs 2 --threads 1

Tiles upsampled ×2 before the model (``--input_scale 2``) were the one change that raised big-rock precision
and recall together at 200 steps, at 4.2× the CPU time per sample (docs/results.md). This asks whether a
full-length model gets most of that by *finishing* at ×2: its ``bench/full_length.py`` run
(``bench/results/full_length/<model>__<recipe>_s<seed>``, 20 epochs at ×1) is fine-tuned for ``--epochs``
epochs with ``train_hf.py --model RUN --input_scale S`` and the run's own recipe, its seed (so its
frame-grouped split) and the fine-tuning defaults (warm-up, loaded tensors at 0.1× the rate). Scale 1 is the
control: the same extra epochs without the resolution change. Each fine-tune trains into
``bench/results/finish_scale/<run>__x<S>_e<E>``, evaluated every epoch; finished ones are skipped, so seeds run
apart (one thread each, side by side) are tabled together by a last call with every seed. Results:
``bench/results/finish_scale.json`` and ``docs/finish_scale.md``.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.ablation import _without, big_rock_precision_recall  # noqa: E402
from bench.common import RESULTS, SHARED_DATA, logged_evals, machine, result_name, run_child, save  # noqa: E402
from bench.full_length import BATCH, CLASSES, check_runs, finished_runs, run_flags  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402

OUT = RESULTS / "finish_scale"


def finetune_flags(spec: str) -> list[str]:
    """The full-length recipe's flags without ``--model`` and ``--warmup_steps`` (a checkpoint gets
    train_hf.py's fine-tuning defaults instead)."""
    return _without(run_flags(spec)[1], "--model", "--warmup_steps")


def finetune(parent: Path, spec: str, seed: int, scale: float, args) -> Path:
    out = OUT / f"{parent.name}__x{scale:g}_e{args.epochs}{'_' + args.tag if args.tag else ''}"
    if (out / "metrics.json").exists():
        print(f"[finish-scale] {out.name}: finished, skipped", flush=True)
        return out
    cmd = [sys.executable, str(ROOT / "train_hf.py"), "--output_dir", str(out), "--overwrite", "true",
           "--data", args.data, "--model", str(parent), *finetune_flags(spec), "--input_scale", f"{scale:g}",
           "--num_train_epochs", str(args.epochs), "--per_device_train_batch_size", str(BATCH),
           "--seed", str(seed), "--eval_strategy", "epoch", "--save_strategy", "epoch", "--save_total_limit", "1",
           "--load_best_model_at_end", "true", "--early_stopping_patience", "0", "--logging_steps", "50",
           "--disable_tqdm", "true", "--torch_threads", str(args.threads), "--dataloader_num_workers", "0",
           "--report_to", "none", *shlex.split(args.extra)]
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"[finish-scale] {out.name}: {args.epochs} epochs at x{scale:g} from {parent}", flush=True)
    t0 = time.time()
    with open(OUT / f"{out.name}.log", "w") as log:
        code = run_child(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                         env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
    if code != 0:
        raise SystemExit(f"{out.name} failed (exit {code}); see {OUT / (out.name + '.log')}")
    print(f"[finish-scale] {out.name}: done in {time.time() - t0:.0f} s", flush=True)
    return out


def scores(metrics: dict) -> dict:
    """Task mIoU, per-class IoU and big-rock precision / recall of a run's final (saved) model."""
    v = metrics["validation"]
    precision, recall = big_rock_precision_recall(metrics["confusion_matrix"])
    return {"task_mean_iou": v["task_mean_iou"], **{c: v[f"iou_{c}"] for c in CLASSES},
            "big_rock_precision": precision, "big_rock_recall": recall}


def untrained(parent: Path, scale: float, data: str | None) -> dict:
    """The parent model's validation scores on tiles resized by ``scale`` with no fine-tuning: how far the
    new scale starts from the one it trained at (``data`` None: the file the run names). ``scale`` is an
    ``--input_scale``; prediction's scales multiply the model's own, so the factor given is their ratio."""
    import torch

    from bench.tta import score, validation_tiles
    from mars_segformer.data.dataset import config_scale
    from mars_segformer.inference import load_model, predict_masks

    images, truths, _ = validation_tiles(parent, None, data)
    model = load_model(str(parent), "cpu")
    with torch.inference_mode():
        preds = predict_masks(model, images, 128, "none", progress=False, scales=(scale / config_scale(model.config),))
    return score(preds, truths)


def own_scale(parent: Path) -> float:
    """The ``input_scale`` a run trained at (its config's; 1 when unset)."""
    from mars_segformer.data.dataset import config_scale

    return config_scale(SimpleNamespace(**json.loads((parent / "config.json").read_text())))


def start_at(parent: Path, scale: float, data: str | None, stored: dict) -> dict:
    """:func:`untrained`, read from a stored row of the same parent (its saved scores) at the same scale when there is
    one: it depends on the parent's weights and the scale only, not on the fine-tune."""
    scores_now = row(parent, None)
    for entry in stored.values():
        got = entry.get("finish", {}).get(f"x{scale:g}", {}).get("untrained")
        if got and entry.get("parent") == scores_now:
            return got
    return untrained(parent, scale, data)


def _split(run: Path) -> dict:
    """A run's split record without the data path (the same file may be named relatively or absolutely)."""
    return {k: v for k, v in json.loads((run / "split.json").read_text()).items() if k != "data"}


def curve(run: Path) -> list[float]:
    """Validation task mIoU at the end of each epoch of a fine-tune (before any logit adjustment), from its log:
    the first evaluation logged at each epoch (the final ones, of the best model and after the adjustment, repeat
    the last epoch's number)."""
    log = run.parent / f"{run.name}.log"  # not run.with_suffix: a scale such as x1.5 has a dot in the name
    by_epoch = {}
    for e in logged_evals(log) if log.exists() else []:
        by_epoch.setdefault(float(e["epoch"]), float(e["eval_task_mean_iou"]))
    return list(by_epoch.values())


def row(parent: Path, run: Path | None) -> dict:
    m = json.loads(((run or parent) / "metrics.json").read_text())
    out = {**scores(m), "logit_adjustment_tau": m.get("logit_adjustment_tau")}
    if fc := m.get("validation_frame_context"):  # the closing report's score inside the tiles' frames, beside it
        out["frame_context"] = fc
    if run is not None:
        out.update(train_samples_per_s=m.get("train_samples_per_s"), torch_threads=m.get("torch_threads"),
                   input_scale=m.get("input_scale"),
                   split_matches_parent=_split(run) == _split(parent), curve=curve(run))
    return out


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(SHARED_DATA))
    p.add_argument("--runs", nargs="+", default=["upernet-r18:combo_logit_adj_frame_shift_bf16"],
                   help="MODEL:RECIPE of bench/full_length.py whose finished runs are fine-tuned")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--scales", type=float, nargs="+", default=[2.0, 1.0], help="--input_scale of each fine-tune")
    p.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs")
    p.add_argument("--threads", type=int, default=1, help="torch threads of each training process")
    p.add_argument("--full_length", default=str(RESULTS / "full_length"), help="where the parent runs are")
    p.add_argument("--extra", default="", help="more train_hf.py flags for every fine-tune (e.g. '--loaded_lr_scale 1'; "
                   "they win over the ones above); give --tag with them")
    p.add_argument("--tag", default="", help="suffix of the fine-tunes' folder and table names, e.g. 'lr1'")
    p.add_argument("--name", type=result_name, default="finish_scale")
    args = p.parse_args()
    check_runs(p, args.runs)
    if args.epochs < 1:
        p.error(f"--epochs {args.epochs}: expected at least 1")
    if any(not 0.25 <= s <= 4 for s in args.scales):
        p.error(f"--scales {args.scales}: expected factors in [0.25, 4]")
    if bool(args.extra) != bool(args.tag) or not all(c.isalnum() or c in "_-." for c in args.tag):
        p.error(f"--extra {args.extra!r} --tag {args.tag!r}: expected both or neither, the tag letters, digits, '_-.'")
    if not Path(args.data).is_file():
        p.error(f"--data {args.data}: no such file")
    parents = finished_runs(p, args.runs, args.seeds, Path(args.full_length))
    stored = RESULTS / f"{args.name}.json"
    before = json.loads(stored.read_text())["rows"] if stored.exists() else {}  # rows of other seeds or runs
    rows = {}
    for (spec, seed), parent in parents.items():
        entry = {"spec": spec, "seed": seed, "epochs": args.epochs, "extra": args.extra, "parent": row(parent, None),
                 "parent_scale": own_scale(parent), "finish": {}}
        for scale in args.scales:
            run = finetune(parent, spec, seed, scale, args)
            entry["finish"][f"x{scale:g}"] = row(parent, run)
            if scale != entry["parent_scale"]:
                entry["finish"][f"x{scale:g}"]["untrained"] = start_at(parent, scale, args.data, before)
        rows[f"{parent.name}__e{args.epochs}{'_' + args.tag if args.tag else ''}"] = entry
    rows = {**before, **rows}
    save(args.name, {"batch_size": BATCH, "machine": machine(), "rows": rows})
    render(rows, ROOT / "docs" / f"{args.name}.md", args)


def _speed(r: dict) -> str:
    if not r.get("train_samples_per_s"):
        return "-"
    threads = r.get("torch_threads")
    return f"{r['train_samples_per_s']:.1f}" + (f" ({threads} thread{'s' if threads != 1 else ''})" if threads else "")


def _short(extra: str) -> str:
    """Extra flags as a table shows them: a path by its file name (the full flags stay in the JSON)."""
    return " ".join(Path(t).name if "/" in t else t for t in shlex.split(extra))


def render(rows: dict, path: Path, args) -> None:
    m = machine()
    lines = [f"Fine-tuning a 20-epoch model for a few more epochs at another input scale "
             f"(`python bench/finish_scale.py --runs ... --seeds ... --scales ... --epochs E`); {m['cpu']} "
             f"({m['cpu_capability']}), {m['cores']} cores; each fine-tune's torch threads beside its speed. Validation task mIoU of the saved model (after any "
             "logit adjustment), frame-grouped split of the run's seed; big-rock precision / recall from its "
             "confusion matrix.", "",
             "| run | seed | model | task mIoU | Δ vs 20 epochs | soil | bedrock | sand | big rock | big-rock P / R | τ "
             "| per epoch (before τ) | train samples/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in rows.values():
        base = e["parent"]["task_mean_iou"]
        for label, r in [(f"20 epochs at x{e.get('parent_scale', 1):g}", e["parent"]),
                         *[(f"+ {e.get('epochs', '?')} epochs at {k}" + (f" (`{_short(e['extra'])}`)" if e.get("extra") else ""), v)
                           for k, v in e["finish"].items()]]:
            pr = f"{r['big_rock_precision']:.2f} / {r['big_rock_recall']:.2f}"
            lines.append(f"| {e['spec']} | {e['seed']} | {label} | {r['task_mean_iou']:.4f} | "
                         f"{r['task_mean_iou'] - base:+.4f} | " + " | ".join(f"{r[c]:.3f}" for c in CLASSES)
                         + f" | {pr} | {r['logit_adjustment_tau']} | "
                         + (" → ".join(f"{x:.3f}" for x in r["curve"]) if r.get("curve") else "-")
                         + f" | {_speed(r)} |")
    starts = sorted({(e["seed"], k, r["untrained"]["task_mean_iou"], r["untrained"]["big_rock"])
                     for e in rows.values() for k, r in e["finish"].items() if r.get("untrained")})
    if starts:
        lines += ["", "Where a fine-tune starts: the 20-epoch model on the resized tiles, untrained at that scale: "
                  + "; ".join(f"seed {s} at {k}: task mIoU {t:.3f}, big rock {b:.3f}" for s, k, t, b in starts) + "."]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
