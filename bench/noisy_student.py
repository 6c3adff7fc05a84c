"""Noisy Student at full length: a student trained from scratch on the labelled tiles plus a full-length
teacher's pseudo-labels of the file's unlabelled tiles, at the teacher's number of training samples.

    python bench/noisy_student.py --seeds 0 --threads 1

Per seed, the teacher is the finished 20-epoch ``bench/full_length.py`` run of ``--runs`` on that seed
(``bench/results/full_length/<model>__<recipe>_s<seed>``, so its frame-grouped split). It labels the shared
file's unlabelled ``test_set`` tiles (``mars_segformer.self_train.label_round``: hflip TTA, ``--threshold``,
per-class ``--quota``, tiles of the seed's validation frames never labelled), and a student of the same model and
recipe trains **from scratch** with those tiles as ``--extra_share`` of its training rows (the noise is the
recipe's own augmentation). Its epochs are ``round(20 × (1 - share))``, so it sees as many training samples as
its teacher did: the question is whether the pseudo-labelled tiles are worth more than more passes over the
labelled ones (self-training at 100-300 steps, docs/results.md, was measured with 0.46-0.51 teachers only).
Students train into ``bench/results/noisy_student/`` and resume from their checkpoints; finished ones are
skipped, so seeds run apart (one thread each, side by side) are tabled together by a last call with every seed.
Results: ``bench/results/noisy_student.json`` and ``docs/noisy_student.md``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import RESULTS, SHARED_DATA, machine, result_name, save  # noqa: E402
from bench.finish_scale import _speed, row  # noqa: E402
from bench.full_length import CLASSES, EPOCHS, check_runs, finished_runs, train  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402

OUT = RESULTS / "noisy_student"


def student_epochs(share: float) -> int:
    """Epochs at which a student whose rows are ``share`` pseudo-labelled sees its teacher's samples."""
    return max(1, round(EPOCHS * (1 - share)))


def pseudo_record(pseudo: dict) -> dict:
    """What a table keeps of a pseudo-label record."""
    return {k: pseudo.get(k) for k in ("path", "tiles_labelled", "tiles_kept", "pixels_kept_share", "thresholds_used",
                                       "coverage", "leakage_guard", "frame_context")}


def context_tag(context: str) -> str:
    """``_frame`` in the names of pseudo-labels (and their students) made inside their frames; none for tiles."""
    return "" if context == "tile" else f"_{context}"


def pseudo_labels(parent: Path, seed: int, args) -> dict:
    """The teacher's pseudo-labels (made once per teacher and settings) and their record."""
    from mars_segformer.data import DataConfig
    from mars_segformer.self_train import label_round
    from mars_segformer.training.pseudo_labels import PseudoLabelConfig

    path = OUT / f"{parent.name}__pseudo_t{args.threshold:g}_q{args.quota:g}{context_tag(args.context)}.npz"
    if not path.with_suffix(".json").exists():
        print(f"[noisy-student] {parent.name} labels the unlabelled tiles -> {path.name}", flush=True)
        label_round(str(parent), args.data, path, PseudoLabelConfig(threshold=args.threshold, quota=args.quota,
                                                                    context=args.context), DataConfig(seed=seed))
    return {"path": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
            **json.loads(path.with_suffix(".json").read_text())}


def student(spec: str, seed: int, parent: Path, pseudo: dict, args) -> Path:
    """Train (or resume, or skip when finished) the seed's student from scratch; returns its run folder."""
    epochs = student_epochs(args.share)
    name = f"{parent.name}__student_share{args.share:g}_t{args.threshold:g}_q{args.quota:g}{context_tag(args.context)}"
    OUT.mkdir(parents=True, exist_ok=True)
    train(spec, seed, SimpleNamespace(data=args.data, epochs=epochs, patience=args.patience, threads=args.threads),
          OUT, extra=("--extra_data", str(ROOT / pseudo["path"]), "--extra_share", f"{args.share:g}"), name=name)
    return OUT / name


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(SHARED_DATA))
    p.add_argument("--runs", nargs="+", default=["upernet-r18:combo_logit_adj_frame_shift_bf16"],
                   help="MODEL:RECIPE of bench/full_length.py: the teachers' runs and the students' recipe")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--share", type=float, default=0.3, help="share of the student's training rows pseudo-labelled")
    p.add_argument("--threshold", type=float, default=0.9, help="confidence a pseudo-labelled pixel needs")
    p.add_argument("--quota", type=float, default=0.3, help="share of each class's pixels kept whatever the threshold")
    p.add_argument("--context", default="tile", choices=["tile", "frame"], help="the teacher labels each tile alone, or "
                   "inside its frame (self_train --context frame)")
    p.add_argument("--label_only", action="store_true", help="make the pseudo-labels and stop (for fine-tunes)")
    p.add_argument("--patience", type=int, default=10, help="early-stopping patience of the students, in epochs")
    p.add_argument("--threads", type=int, default=1, help="torch threads of each training process")
    p.add_argument("--full_length", default=str(RESULTS / "full_length"), help="where the teachers' runs are")
    p.add_argument("--name", type=result_name, default="noisy_student")
    args = p.parse_args()
    check_runs(p, args.runs)
    if not 0 < args.share < 1:
        p.error(f"--share {args.share}: expected a share in (0, 1)")
    if not 0 < args.threshold < 1 or not 0 <= args.quota < 1:
        p.error(f"--threshold {args.threshold} --quota {args.quota}: expected a threshold in (0, 1), a quota in [0, 1)")
    if not Path(args.data).is_file():
        p.error(f"--data {args.data}: no such file")
    parents = finished_runs(p, args.runs, args.seeds, Path(args.full_length))
    rows = {}
    for (spec, seed), parent in parents.items():
        pseudo = pseudo_labels(parent, seed, args)
        if args.label_only:
            print(f"[noisy-student] {pseudo['path']}: {pseudo['tiles_kept']} tiles kept", flush=True)
            rows[Path(pseudo["path"]).stem] = {"spec": spec, "seed": seed, **pseudo_record(pseudo)}
            continue
        run = student(spec, seed, parent, pseudo, args)
        if not (run / "metrics.json").is_file():
            raise SystemExit(f"{run.name} did not finish; see {OUT / (run.name + '.log')}")
        rows[run.name] = {
            "spec": spec, "seed": seed, "share": args.share, "threshold": args.threshold, "quota": args.quota,
            "context": args.context,
            "epochs": student_epochs(args.share), "teacher": row(parent, None),
            "student": row(parent, run),  # + its speed, threads, curve and whether its split is the teacher's
            "pseudo": pseudo_record(pseudo)}
    stored = RESULTS / f"{args.name}.json"
    if stored.exists():  # rows of other seeds (or other pseudo-label records), kept together
        rows = {**json.loads(stored.read_text())["rows"], **rows}
    if args.label_only:  # the records of the pseudo-labels (their files are ignored by git)
        save(args.name, {"what": "pseudo-label records (--label_only)", "machine": machine(), "rows": rows})
        return
    save(args.name, {"batch_size": 32, "machine": machine(), "rows": rows})
    render(rows, ROOT / "docs" / f"{args.name}.md")


def _framed(r: dict) -> str:
    """A row's closing-report score inside the tiles' frames, or ``-`` for a run without one."""
    fc = r.get("frame_context")
    return f"{fc['task_mean_iou']:.4f} ({fc['iou_big_rock']:.3f})" if fc else "-"


def render(rows: dict, path: Path) -> None:
    m = machine()
    lines = [f"Noisy Student at full length (`python bench/noisy_student.py --seeds ...`); {m['cpu']} "
             f"({m['cpu_capability']}), {m['cores']} cores. Validation task mIoU of the saved model (after any logit "
             "adjustment) on the frame-grouped split of the seed; the student trains from scratch on the labelled "
             "tiles and the teacher's pseudo-labels, at the teacher's samples seen.", "",
             "| seed | model | task mIoU | Δ vs teacher | soil | bedrock | sand | big rock | big-rock P / R | τ | "
             "inside their frames (big rock) | pseudo tiles kept (pixels kept) | per epoch (before τ) | "
             "train samples/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in rows.values():
        t, s = e["teacher"], e["student"]
        for label, r in (("teacher (20 epochs)", t),
                         (f"student (share {e['share']:g}, {e['epochs']} epochs, threshold {e['threshold']:g}, "
                          f"quota {e['quota']:g})", s)):
            pseudo = (f"{e['pseudo']['tiles_kept']} of {e['pseudo']['tiles_labelled']} "
                      f"({e['pseudo']['pixels_kept_share']:.1%})") if r is s else ""
            lines.append(f"| {e['seed']} | {label} | {r['task_mean_iou']:.4f} | "
                         f"{r['task_mean_iou'] - t['task_mean_iou']:+.4f} | "
                         + " | ".join(f"{r[c]:.3f}" for c in CLASSES)
                         + f" | {r['big_rock_precision']:.2f} / {r['big_rock_recall']:.2f} | "
                         f"{r['logit_adjustment_tau']} | {_framed(r)} | {pseudo} | "
                         + (" → ".join(f"{x:.3f}" for x in r.get("curve") or []) or "-") + f" | {_speed(s) if r is s else ''} |")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
