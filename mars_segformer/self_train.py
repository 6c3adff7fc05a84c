"""Self-training: rounds of teacher -> pseudo-labels of the unlabelled tiles -> student (the next teacher).

    python -m mars_segformer.self_train --teacher runs/mars-segformer --data ../shared/data/ai4mars_msl_64x128.npz \\
        --out runs/self-train --rounds 2 -- --max_steps 600 --seed 42
    python -m mars_segformer.self_train ... --threshold 0.9 --quota 0.3 --class_threshold big_rock=0.6

Round k writes ``OUT/round_k/pseudo.npz`` (+ ``pseudo.json``: teacher, thresholds, coverage per class)
and trains ``OUT/round_k/student`` with ``train_hf.py`` and ``--extra_data`` (flags after ``--`` go
to every student; by default the student starts from its teacher's weights). Finished steps are
skipped when the command is run again; an interrupted student continues from its last checkpoint.
Tiles from a validation frame (same ``--seed`` / ``--val_fraction`` as the students) are never
pseudo-labelled.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .argparsing import ArgumentParser
from .data.errors import MarsDataError
from .data.sources import load_arrays
from .inference.options import CONTEXTS, PredictError
from .outputs import OutputPathError, check_output_folder
from .training.errors import RunError
from .training.flags import check_early
from .training.pseudo_labels import (
    PseudoLabelConfig,
    check_teacher_labels,
    leakage_guard,
    pseudo_label,
    write_pseudo_labels,
)


def student_split(student_args: list[str], out: Path):
    """The students' flags, checked as ``train_hf.py`` checks them (before any teacher runs), and the
    split they will validate on (seed, fraction, outlier settings), which the leakage guard must keep."""
    from .data.dataset import DataConfig
    from .training.checks import check_arguments
    from .training.run import data_config, parse_args

    parsed = parse_args(["--output_dir", str(out / "round_1" / "student"), *student_args])
    check_arguments(*parsed)
    cfg = data_config(parsed[1], parsed[3].seed)
    return DataConfig(val_fraction=cfg.val_fraction, seed=cfg.seed, drop_outliers=cfg.drop_outliers,
                      outlier_min_count=cfg.outlier_min_count)


def label_round(teacher: str, data: str | None, out: Path, config: PseudoLabelConfig, split,
                trust_remote_code: bool = False) -> dict:
    """Pseudo-labels of ``data``'s unlabelled tiles by ``teacher`` -> ``out`` (+ JSON); returns the record.
    ``split`` is the students' ``DataConfig``; ``out``'s folder is made only once there is something to write."""
    from .data.dataset import clean_and_split
    from .inference.predictor import load_model

    arrays = load_arrays(data)
    if len(arrays.test_images) == 0:
        raise MarsDataError(f"{arrays.source}: no unlabelled tiles (test_set is empty) to pseudo-label")
    _, _, _, va = clean_and_split(arrays, split)
    allowed, guard = leakage_guard(arrays, va)
    model = load_model(teacher, None, trust_remote_code)  # the GPU when there is one
    check_teacher_labels(model, teacher)
    images = arrays.test_images[allowed]
    ids = None if arrays.test_frame_ids is None else arrays.test_frame_ids[allowed]
    tiles, masks, record = pseudo_label(model, images, ids, config)
    record.update(teacher=str(teacher), data=arrays.source, leakage_guard=guard, seed=split.seed,
                  val_fraction=split.val_fraction, drop_outliers=split.drop_outliers,
                  outlier_min_count=split.outlier_min_count)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_pseudo_labels(out, images[tiles], masks, None if ids is None else ids[tiles], record)
    return record


def run_rounds(teacher: str, data: str | None, out: Path, rounds: int, config: PseudoLabelConfig,
               student_args: list[str], student_init: str = "teacher", trust_remote_code: bool = False) -> list[dict]:
    """Every round, resumable; returns one summary per round."""
    from .training import main as train_main

    split = student_split(student_args, out)
    summaries = []
    for k in range(1, rounds + 1):
        folder = out / f"round_{k}"
        pseudo = folder / "pseudo.npz"
        if pseudo.exists() and pseudo.with_suffix(".json").exists():
            record = json.loads(pseudo.with_suffix(".json").read_text())
        else:
            print(f"[self-train] round {k}: {teacher} labels the unlabelled tiles", flush=True)
            record = label_round(teacher, data, pseudo, config, split, trust_remote_code)
        print(f"[self-train] round {k}: {record['tiles_kept']} of {record['tiles_labelled']} tiles kept, "
              f"{record['pixels_kept_share']:.1%} of pixels; thresholds {record['thresholds_used']}", flush=True)
        student = folder / "student"
        if not (student / "metrics.json").exists():
            resume = (student / "run_args.json").exists() and any(student.glob("checkpoint-*"))
            argv = (["--output_dir", str(student), "--resume_from_checkpoint", "true"] if resume else
                    ["--output_dir", str(student), "--overwrite", "true", *(["--data", data] if data else []),
                     "--extra_data", str(pseudo), *(["--model", str(teacher)] if student_init == "teacher" else []),
                     *student_args])
            print(f"[self-train] round {k}: training the student ({'resumed' if resume else 'new'})", flush=True)
            if train_main(argv) != 0:
                raise MarsDataError(f"round {k}: the student's training failed (see above)")
        metrics = json.loads((student / "metrics.json").read_text())
        summaries.append({"round": k, "teacher": str(teacher), "student": str(student), "pseudo": record,
                          "validation": metrics["validation"]})
        teacher = str(student)
    return summaries


def _class_thresholds(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            raise MarsDataError(f"--class_threshold expects CLASS=VALUE (e.g. big_rock=0.6), got {item!r}") from None
        if not sep:
            raise MarsDataError(f"--class_threshold expects CLASS=VALUE (e.g. big_rock=0.6), got {item!r}")
    return out


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, student_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    p = ArgumentParser(prog="python -m mars_segformer.self_train", description=__doc__.splitlines()[0])
    p.add_argument("--teacher", required=True, help="the first teacher: a run folder or Hub repo id")
    p.add_argument("--data", default=None, help="labelled + unlabelled tiles (default: embedded sample)")
    p.add_argument("--out", required=True, help="folder of the rounds")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--threshold", type=float, default=0.9, help="confidence a pixel needs, in (0, 1)")
    p.add_argument("--class_threshold", action="append", default=[], help="CLASS=VALUE, e.g. big_rock=0.6")
    p.add_argument("--quota", type=float, default=0.3, help="share of each class's pixels kept whatever the threshold")
    p.add_argument("--min_kept", type=float, default=0.05, help="tiles with fewer kept pixels are left out")
    p.add_argument("--tta", default="hflip", choices=["none", "hflip", "flips"])
    p.add_argument("--context", default="tile", choices=CONTEXTS, help="the teacher labels each unlabelled "
                   "tile alone, or inside its frame where the data's frame ids let it be put back together "
                   "(predict --context frame)")
    p.add_argument("--student_init", default="teacher", choices=["teacher", "scratch"],
                   help="the student starts from its teacher's weights, or from the --model preset in the student flags")
    p.add_argument("--trust-remote-code", action="store_true")
    args = p.parse_args(own)
    try:
        if args.rounds < 1:
            raise MarsDataError(f"--rounds must be at least 1, got {args.rounds}")
        config = PseudoLabelConfig(args.threshold, _class_thresholds(args.class_threshold), args.quota,
                                   args.min_kept, args.tta, args.context)
        config.check()
        check_output_folder(args.out, "--out")
        # the students' flags, values and names, before torch is imported (their --output_dir as below)
        check_early(["--output_dir", str(Path(args.out) / "round_1" / "student"), *student_args])
        student_split(student_args, Path(args.out))  # a bad student flag stops here, before the teacher runs
        summaries = run_rounds(args.teacher, args.data, Path(args.out), args.rounds, config, student_args,
                               args.student_init, args.trust_remote_code)
    except (MarsDataError, PredictError, OutputPathError, RunError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for s in summaries:
        print(f"round {s['round']}: student task mIoU {s['validation']['task_mean_iou']:.4f} "
              f"(big rock {s['validation']['iou_big_rock']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
