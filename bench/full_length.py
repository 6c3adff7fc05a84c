"""Full-length training: contenders trained for many epochs, evaluated every epoch, resumable.

    python bench/full_length.py --runs upernet-r18:default deeplabv3plus:default --epochs 20 --threads 1
    python bench/full_length.py --render-only       # table + curve PNG from whatever has been trained so far
    python bench/full_length.py --runs upernet-r18:combo_logit_adj --seeds 0 --data_seed 1   # run-to-run noise

Each run is ``train_hf.py`` on the frame-grouped split of the shared AI4Mars file with eval and a
checkpoint every epoch, early stopping on validation task mIoU (patience 10) and the LR schedule
set for ``--epochs``; it trains into ``bench/results/full_length/<model>__<recipe>_s<seed>``
(``<model>__<recipe>_e<epochs>_s<seed>`` when ``--epochs`` is not 20). Runs are taken one after the
other; a killed one continues from its last checkpoint when started again (same flags), a finished one
(``metrics.json``) is skipped. Two sweeps at once on 2 cores must each use ``--threads 1``.

Recipes: ``default`` is the recipe of the earlier default (focal + class weights + background ignored,
hflip); ``reference`` adds the reference report's augmentation, CutMix 0.5 and big-rock oversampling ×15
(``configs/reference.yaml``); every big-rock candidate of ``bench/ablation.py`` (``8_NAME``) is recipe ``NAME``. Results: ``bench/results/full_length.json``, ``docs/full_length.png``
(validation task mIoU against samples seen) and ``docs/full_length.md``; runs still training are
drawn as far as their last checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.ablation import (  # noqa: E402
    ADJUST,
    AUX_HEAD,
    BF16,
    BIG_ROCK,
    CONTEXT,
    HARD,
    IGNORE,
    OVERSAMPLE,
    PRECISION,
    _with,
    big_rock_precision_recall,
    fixed_precision,
)
from bench.common import RESULTS, SHARED_DATA, machine, run_child  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.training.flags import flag_value  # noqa: E402

#: recipe name -> train_hf.py flags. "default" is recipe 3 (focal + class weights, background ignored, hflip),
#: the default until issue 19 made "combo" (bench/ablation.py's 9_combo) train_hf.py's default; the name
#: stays so that the stored runs keep theirs. The big-rock candidates of bench/ablation.py by their name without
#: the "8_" prefix (e.g. ``upernet-r18:focal_lovasz``), and the default in bf16 autocast as ``combo_bf16``, train_hf.py's default (9_combo + logit adjustment auto) as
#: ``combo_logit_adj``, and that with an OHEM term (13_combo_logit_adj_ohem) as ``combo_logit_adj_ohem``, both in
#: bf16 autocast as ``combo_logit_adj_bf16`` / ``combo_logit_adj_ohem_bf16``; with shifted frame reads
#: (14_combo_logit_adj_frame_shift) as ``combo_logit_adj_frame_shift`` (``_bf16``); the reference recipe in bf16 autocast
#: as ``reference_bf16`` (for its 60-epoch run beside the default's, which ran in bf16); every other recipe runs in float32 on
#: every machine (``fixed_precision``); their --model is replaced by the run's MODEL
RECIPES = {"default": IGNORE, "reference": OVERSAMPLE, "reference_bf16": _with(OVERSAMPLE, bf16="true"),
           **{name.split("_", 1)[1]: flags for name, (_, flags) in {**BIG_ROCK, **PRECISION, **ADJUST, **HARD, **CONTEXT, **BF16}.items()}}
#: model spec -> extra flags (the reference's SegFormer-style head is on a regnetx encoder)
MODELS = {
    "upernet-r18": {}, "upernet-r18-x1.5-h96": {}, "upernet-r18-aux": {"model": "upernet-r18", "model_overrides": AUX_HEAD},
    "upernet-r34": {}, "upernet-convnext-atto": {}, "upernet-convnext-atto-s2": {},
    "segformer-b0": {}, "deeplabv3plus": {}, "unet-attention": {},
    "timm-segformer-regnetx_016": {"model": "timm-segformer", "model_overrides": '{"encoder_name": "regnetx_016"}'},
}
CLASSES = ("soil", "bedrock", "sand", "big_rock")
BATCH = 32
#: the schedule of the stored runs; other lengths get their own folders (:func:`run_name`)
EPOCHS = 20


def run_flags(spec: str) -> tuple[str, list[str]]:
    """``MODEL:RECIPE`` -> (run name, train_hf.py flags).

    Raises:
        ValueError: an unknown model or recipe.
    """
    model, _, recipe = spec.partition(":")
    recipe = recipe or "default"
    if model not in MODELS or recipe not in RECIPES:
        raise ValueError(f"--runs {spec!r}: expected MODEL:RECIPE with MODEL in {sorted(MODELS)}, RECIPE in "
                         f"{sorted(RECIPES)}")
    return f"{model}__{recipe}", fixed_precision(_with(RECIPES[recipe], **{"model": model, **MODELS[model]}))


def check_runs(parser: ArgumentParser, specs: list[str]) -> None:
    """Every ``--runs`` spec known, else one line and exit 2, before anything trains."""
    for spec in specs:
        try:
            run_flags(spec)
        except ValueError as e:
            parser.error(str(e))


def run_name(spec: str, seed: int, epochs: int, data_seed: int | None = None, teachers: int = 0) -> str:
    """The run's folder name: ``MODEL__RECIPE_sSEED``, with ``_eEPOCHS`` before the seed when the schedule is
    not the usual 20 epochs (so a longer run of a recipe never resumes, or is skipped as, the 20-epoch one),
    ``_kdN`` for a student of N teachers (``--teachers``) and ``_dsN`` for a rerun with the Trainer's data-order
    seed N (``--data_seed``)."""
    name, _ = run_flags(spec)
    return (f"{name}{'' if epochs == EPOCHS else f'_e{epochs}'}{f'_kd{teachers}' if teachers else ''}"
            f"{'' if data_seed is None else f'_ds{data_seed}'}_s{seed}")


def teacher_folders(parser: ArgumentParser, names: list[str], seed: int, folder: Path) -> list[Path]:
    """``--teachers`` names (run folder names without ``_sSEED``) as the finished runs of ``seed`` in ``folder``;
    else one line and exit 2."""
    runs = [folder / f"{n}_s{seed}" for n in names]
    for run in runs:
        if not (run / "metrics.json").is_file():
            parser.error(f"--teachers: {run} has no metrics.json; expected a finished run of seed {seed} in {folder}")
    return runs


def trained_teachers(run: Path) -> list[str] | None:
    """The teacher run names a run folder was (or is being) trained with, from the ``--teachers`` of its
    ``run_args.json``: ``[]`` for a run without teachers, None where the folder has no ``run_args.json``."""
    args_file = run / "run_args.json"
    if not args_file.is_file():
        return None
    value = flag_value(json.loads(args_file.read_text()).get("argv", []), "teachers")
    return [Path(t).name for t in value.split(",")] if value else []


def check_student_folders(parser: ArgumentParser, names: dict[str, list[Path]], folder: Path) -> None:
    """A student's folder is named by its teachers' count (``_kdN``), not by which runs they are: an existing folder
    of that name trained with other teachers would be skipped as finished or resumed as the wrong run. One line and
    exit 2 for such a folder, before anything trains (``names``: folder name -> the teachers asked for)."""
    for name, teachers in names.items():
        had, want = trained_teachers(folder / name), [t.name for t in teachers]
        if had is not None and sorted(had) != sorted(want):
            parser.error(f"--teachers: {folder / name} was trained with teachers {', '.join(had) or 'none'}, not "
                         f"{', '.join(want) or 'none'}; expected the same teachers (move that folder away to train "
                         f"a student of others)")


def finished_runs(parser: ArgumentParser, specs: list[str], seeds: list[int], folder: Path) -> dict[tuple[str, int], Path]:
    """The finished 20-epoch run of every spec and seed in ``folder``, by (spec, seed); else one line and exit 2."""
    runs = {(spec, seed): folder / run_name(spec, seed, EPOCHS) for spec in specs for seed in seeds}
    for (spec, seed), run in runs.items():
        if not (run / "metrics.json").is_file():
            parser.error(f"--runs {spec} --seeds {seed}: {run} has no metrics.json; expected a finished "
                         f"bench/full_length.py run")
    return runs


def train(spec: str, seed: int, args, out_root: Path, extra: tuple[str, ...] = (), name: str | None = None,
          data_seed: int | None = None) -> None:
    """Train (or resume) one run of ``spec`` into ``out_root / name`` (default :func:`run_name`), its log beside it;
    ``extra`` flags come after the recipe's (``args``: data, epochs, patience, threads); ``data_seed``: the
    Trainer's data-order seed of a rerun (``--data_seed``)."""
    _, flags = run_flags(spec)
    if data_seed is not None:
        extra = ("--data_seed", str(data_seed), *extra)
    out = out_root / (name or run_name(spec, seed, args.epochs, data_seed))
    if (out / "metrics.json").exists():
        print(f"[full-length] {out.name}: finished, skipped", flush=True)
        return
    resume = any(out.glob("checkpoint-*"))
    cmd = [sys.executable, str(ROOT / "train_hf.py"), "--output_dir", str(out), "--data", args.data, *flags,
           "--num_train_epochs", str(args.epochs), "--per_device_train_batch_size", str(BATCH), "--seed", str(seed),
           "--eval_strategy", "epoch", "--save_strategy", "epoch", "--save_total_limit", "2",
           "--load_best_model_at_end", "true", "--early_stopping_patience", str(args.patience),
           "--logging_steps", "50", "--disable_tqdm", "true", "--torch_threads", str(args.threads),
           "--dataloader_num_workers", "0", "--report_to", "none", *extra]
    cmd += ["--resume_from_checkpoint", "true"] if resume else ["--overwrite", "true"]
    out.mkdir(parents=True, exist_ok=True)
    print(f"[full-length] {out.name}: {'resuming' if resume else 'starting'} ({args.epochs} epochs, "
          f"{args.threads} thread(s))", flush=True)
    t0 = time.time()
    with open(out_root / f"{out.name}.log", "a") as log:
        code = run_child(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
    print(f"[full-length] {out.name}: exit {code} after {time.time() - t0:.0f} s", flush=True)


def _history(run: Path) -> tuple[list[dict], dict | None]:
    """Per-epoch evaluations of a run (finished or as far as its newest checkpoint), and its metrics.json."""
    metrics = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").exists() else None
    # the newest checkpoint's state holds the whole history up to it (the best one is kept too)
    state = newest_state(run)
    if state is None:
        return [], metrics
    evals = [e for e in state["log_history"] if "eval_task_mean_iou" in e]
    return evals, metrics


def newest_state(run: Path) -> dict | None:
    """The ``trainer_state.json`` of the newest checkpoint of ``run`` written to the end (a run killed while
    saving leaves a newer one without it, or with it cut short), or None where there is none."""
    # imports transformers: only when a run is read
    from mars_segformer.training.faults import is_complete_checkpoint, numbered_checkpoints

    done = [p for _, p in numbered_checkpoints(run) if is_complete_checkpoint(p)]
    return json.loads((done[-1] / "trainer_state.json").read_text()) if done else None


def _adjustment(metrics: dict | None) -> dict | None:
    """A finished run's logit adjustment: the tau it picked and the final model's scores before and after."""
    if not metrics or not metrics.get("validation_before_logit_adjustment"):
        return None

    def scores(v):
        return {"task_mean_iou": v["task_mean_iou"], **{c: v[f"iou_{c}"] for c in CLASSES}}

    search = metrics.get("logit_adjustment_search") or {}
    return {"tau": metrics["logit_adjustment_tau"], "search_scores": search.get("scores"),
            "before": scores(metrics["validation_before_logit_adjustment"]), "after": scores(metrics["validation"])}


def _precision_recall(metrics: dict | None) -> list[float] | None:
    """A finished run's big-rock pixel precision and recall on validation, from its final confusion matrix."""
    cm = (metrics or {}).get("confusion_matrix")
    return None if cm is None else [round(v, 4) for v in big_rock_precision_recall(cm)]


def summarize(out_root: Path) -> dict:
    rows, here = {}, machine()
    for run in sorted(p for p in out_root.iterdir() if p.is_dir()):
        evals, metrics = _history(run)
        if not evals:
            continue
        best = max(evals, key=lambda e: e["eval_task_mean_iou"])
        rows[run.name] = {
            "model": run.name.split("__")[0], "recipe": run.name.split("__")[1].rsplit("_s", 1)[0],
            "seed": int(run.name.rsplit("_s", 1)[1]), "finished": metrics is not None,
            "epochs_reached": evals[-1]["epoch"], "samples_seen": evals[-1]["step"] * BATCH,
            "best": {"epoch": best["epoch"], "samples_seen": best["step"] * BATCH,
                     "task_mean_iou": best["eval_task_mean_iou"],
                     **{c: best[f"eval_iou_{c}"] for c in CLASSES}},
            "curve": [[e["step"] * BATCH, e["eval_task_mean_iou"]] for e in evals],
            # the last training segment's speed (a resumed run reports the part after the resume)
            "train_samples_per_s": metrics["train_samples_per_s"] if metrics else None,
            "logit_adjustment": _adjustment(metrics),
            # of the saved model (after its logit adjustment), so the tables' precision / recall live in git too
            "big_rock_precision_recall": _precision_recall(metrics),
            # the saved model's validation tiles predicted inside their frames, beside its tile-by-tile score
            **({"frame_context": fc} if metrics and (fc := metrics.get("validation_frame_context")) else {}),
            **({"teachers": teachers} if (teachers := trained_teachers(run)) else {}),
            "measured_on": f"{here['cpu']} ({here['cpu_capability']})",
        }
    return {"batch_size": BATCH, "machine": here, "rows": rows}


#: the recipes of the shifted-frame-read family (the default's and its candidates since), drawn per split in
#: docs/full_length_frame_reads.png; the 60-epoch runs are left out (their x axis is three times as long)
FRAME_READ_FAMILY = "combo_logit_adj_frame_"


def render_frame_reads(rows: dict, docs: Path, plt) -> dict[int, list[str]]:
    """One panel per split: the 20-epoch runs of the shifted-frame-read recipes, so that a candidate can be read
    against its own split's default runs (reruns with another data order included).

    Returns:
        {seed: the labels drawn in its panel} (empty, and no file written, without such runs).
    """
    runs = [r for r in rows.values() if r["recipe"].startswith(FRAME_READ_FAMILY)
            and not re.search(r"_e\d+(_|$)", r["recipe"]) and r["model"].startswith("upernet-r18")]  # run_name's _eN
    seeds = sorted({r["seed"] for r in runs})
    if not seeds:
        return {}
    def label(r: dict) -> str:
        extra = r["model"].removeprefix("upernet-r18").lstrip("-")
        return f"{extra + ': ' if extra else ''}{r['recipe'].removeprefix(FRAME_READ_FAMILY)}"

    def is_default(r: dict) -> bool:  # the stored default run and its data-order reruns
        return r["model"] == "upernet-r18" and r["recipe"].removeprefix(FRAME_READ_FAMILY).startswith("shift_bf16")

    def recipe(r: dict) -> str:  # a candidate's data-order reruns (run_name's _dsN) share its colour
        return re.sub(r"_ds\d+$", "", label(r))

    candidates = sorted({recipe(r) for r in runs if not is_default(r)})
    colour = {name: plt.get_cmap("tab10").colors[i % 10] for i, name in enumerate(candidates)}  # one per candidate
    fig, axes = plt.subplots(1, len(seeds), figsize=(6 * len(seeds), 5.5), sharey=True, squeeze=False)
    for ax, seed in zip(axes[0], seeds, strict=True):
        for r in (r for r in runs if r["seed"] == seed):
            xs, ys = zip(*r["curve"], strict=True)
            ax.plot(xs, ys, "-" if is_default(r) else "--", marker=".", markersize=3,
                    color="0.45" if is_default(r) else colour[recipe(r)], label=label(r))
        ax.set_title(f"seed {seed} (its own frame-grouped split)", fontsize=10)
        ax.set_xlabel(f"samples seen (batch {BATCH})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[0][0].set_ylabel("validation task mean IoU (classes 1-4)")
    fig.suptitle("UperNet-R18, 20 epochs: shifted frame reads (gray: frame_shift at half the reads, with reruns; "
                 "dashed: candidates)", fontsize=10)
    fig.tight_layout()
    fig.savefig(docs / "full_length_frame_reads.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return {seed: [label(r) for r in runs if r["seed"] == seed] for seed in seeds}


def render_curves(rows: dict, batch_size: int, docs: Path, plt) -> None:
    """Every run's validation curve in one PNG (docs/full_length.png)."""
    fig, ax = plt.subplots(figsize=(13, 6))
    colors = plt.get_cmap("tab20").colors  # a colour per run up to 20, then a new line style for the next 20
    for i, r in enumerate(rows.values()):
        xs, ys = zip(*r["curve"], strict=True)
        ls = ("-", "--", ":")[min(i // len(colors), 2)]
        label = f"{r['model']} · {r['recipe']} · s{r['seed']}" + ("" if r["finished"] else " (training)")
        ax.plot(xs, ys, ls, marker=".", markersize=3, color=colors[i % len(colors)], label=label)
    ax.set_xlabel(f"samples seen (batch {batch_size})")
    ax.set_ylabel("validation task mean IoU (classes 1-4)")
    ax.set_title("full-length runs, frame-grouped validation (CPU; machines in full_length.md)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)  # beside the curves
    fig.tight_layout()
    fig.savefig(docs / "full_length.png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def render(summary: dict, docs: Path) -> None:
    """The curves (docs/full_length.png, docs/full_length_frame_reads.png) and the table (docs/full_length.md)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, m = summary["rows"], summary["machine"]
    render_curves(rows, summary["batch_size"], docs, plt)
    render_frame_reads(rows, docs, plt)
    lines = [
        f"Machine: each row's `measured_on` in bench/results/full_length.json (this render: {m['cpu']}, "
        f"{m['cores']} cores, GPU {m['gpu']}); the float32 recipes one torch thread per run with 2-4 jobs sharing "
        "the cores; the `_bf16` recipes one or two threads, alone or beside one other run (each run's setting: "
        f"docs/results.md, beside its command); batch {summary['batch_size']}, the LR schedule set for the full run "
        "length, evaluation every epoch on "
        "the seed's frame-grouped validation split of `../shared/data/ai4mars_msl_64x128.npz`. 'best' is the best "
        "epoch so far; runs marked 'training' are read from their newest checkpoint (`python bench/full_length.py "
        "--runs MODEL:RECIPE` continues them). Big-rock P / R: pixel precision and recall of the saved model (the "
        "run's final validation, after its logit adjustment; kept since the ×1.5 runs). train samples/s: finished "
        "runs, their last segment, under that load.",
        "",
        "| model | recipe | seed | state | samples seen | epochs | best task mIoU | at epoch | soil | bedrock | sand "
        "| big rock | big-rock P / R (saved model) | train samples/s | machine |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows.values(), key=lambda r: -r["best"]["task_mean_iou"]):
        b = r["best"]
        speed = f"{r['train_samples_per_s']:.1f}" if r["train_samples_per_s"] else "-"
        pr = r.get("big_rock_precision_recall")  # rows summarised before it was kept have none
        pr = f"{pr[0]:.2f} / {pr[1]:.2f}" if pr else "-"
        lines.append(f"| {r['model']} | {r['recipe']} | {r['seed']} | {'finished' if r['finished'] else 'training'} "
                     f"| {r['samples_seen']:,} | {r['epochs_reached']:.0f} | {b['task_mean_iou']:.4f} | {b['epoch']:.0f} | "
                     + " | ".join(f"{b[c]:.3f}" for c in CLASSES) + f" | {pr} | {speed} | {r.get('measured_on', '-')} |")
    # the same runs at equal samples seen: every 25,000 samples (~5 epochs of the plain train split), the
    # evaluation nearest to it (within 10 %); recipes with oversampling have longer epochs
    step = 25_000
    top = max(r["samples_seen"] for r in rows.values())
    marks = list(range(step, top + step // 10 + 1, step))
    if marks:
        lines += ["", "Validation task mIoU at equal samples seen:", "",
                  "| model | recipe | seed | " + " | ".join(f"{k // 1000}k" for k in marks) + " |",
                  "|---|---|---|" + "---|" * len(marks)]
        for r in rows.values():
            cells = []
            for k in marks:
                x, y = min(r["curve"], key=lambda p, k=k: abs(p[0] - k))
                cells.append(f"{y:.3f}" if abs(x - k) <= 0.1 * k else "-")
            lines.append(f"| {r['model']} | {r['recipe']} | {r['seed']} | " + " | ".join(cells) + " |")
    (docs / "full_length.md").write_text("\n".join(lines) + "\n")


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(SHARED_DATA))
    p.add_argument("--runs", nargs="+", default=["upernet-r18:combo_logit_adj"],
                   help="MODEL:RECIPE, trained in this order (default: train_hf.py's default recipe)")
    p.add_argument("--seeds", type=int, nargs="+", default=[42])
    p.add_argument("--epochs", type=int, default=EPOCHS)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--threads", type=int, default=1, help="torch threads of each training process")
    p.add_argument("--data_seed", type=int, default=None,
                   help="the Trainer's data-order seed (same split, initialisation and augmentation seeds, another "
                        "order of the reads): a rerun of a run that measures the run-to-run noise; the run is named "
                        "RECIPE_dsN")
    p.add_argument("--teachers", nargs="+", default=[],
                   help="distillation: run names in --out without their _sSEED (e.g. "
                        "upernet-r18__combo_logit_adj_frame_shift_p1_bf16); each seed's student learns the mean "
                        "probabilities of those runs of its seed (train_hf.py --teachers); the run is named RECIPE_kdN")
    p.add_argument("--out", default=str(RESULTS / "full_length"))
    p.add_argument("--render-only", action="store_true")
    args = p.parse_args()
    check_runs(p, args.runs)
    if args.data_seed is not None and args.data_seed in args.seeds:
        # the Trainer orders the reads by --seed when no data seed is given: this would replay the run exactly
        p.error(f"--data_seed {args.data_seed}: that is the order of the run with --seeds {args.data_seed} itself; "
                "expected a data seed none of --seeds has")
    if not args.render_only and not Path(args.data).is_file():
        p.error(f"--data {args.data}: no such file")
    out_root = Path(args.out)
    out_root.mkdir(parents=True, exist_ok=True)
    if not args.render_only:
        # every seed's teachers are checked before anything trains
        teachers_of = {seed: teacher_folders(p, args.teachers, seed, out_root) if args.teachers else []
                       for seed in args.seeds}
        names = {(seed, spec): run_name(spec, seed, args.epochs, args.data_seed, len(teachers_of[seed]))
                 for seed in args.seeds for spec in args.runs}
        check_student_folders(p, {name: teachers_of[seed] for (seed, _), name in names.items()}, out_root)
        for (seed, spec), name in names.items():  # seed by seed, each seed's runs in --runs order, as before
            teachers = teachers_of[seed]
            extra = ("--teachers", ",".join(map(str, teachers))) if teachers else ()
            train(spec, seed, args, out_root, extra=extra, data_seed=args.data_seed, name=name)
    summary = summarize(out_root)
    # run folders are not kept in git: rows of an earlier checkout stay from the stored JSON unless this
    # checkout has that run (then its own folder replaces the row)
    stored = RESULTS / "full_length.json"
    if stored.exists():
        before = json.loads(stored.read_text())
        earlier = before["rows"]
        for r in earlier.values():  # rows of an earlier checkout were measured on that summary's machine
            r.setdefault("measured_on", before["machine"]["cpu"])
        summary["rows"] = {**{n: r for n, r in earlier.items() if n not in summary["rows"]}, **summary["rows"]}
    tmp = RESULTS / "full_length.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1))
    os.replace(tmp, tmp.with_suffix(""))
    if summary["rows"]:
        render(summary, ROOT / "docs")
    print(json.dumps({n: r["best"] for n, r in summary["rows"].items()}, indent=1))


if __name__ == "__main__":
    main()
