"""Self-supervised pretraining of the default model's backbone on a file's images (DenseCL).

    python -m mars_segformer.pretrain --data ../shared/data/ai4mars_msl_64x128.npz --output_dir runs/densecl
    python train_hf.py --model runs/densecl ...        # a native UperNet-R18 starting from that backbone
    python push_to_hub.py runs/densecl --repo_id user/mars-densecl-r18

Images only, masks unused: the labelled training tiles and the unlabelled ones, never a tile of a
frame the later run validates on (give the run's ``--seed`` and ``--val_fraction``). Progress every
``--logging_steps``; state saved every ``--save_steps`` and on SIGTERM / Ctrl-C; the same command
continues an unfinished run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .argparsing import ArgumentParser
from .data.errors import MarsDataError
from .outputs import OutputPathError, check_output_folder
from .training.errors import RunError
from .training.pretraining import PRETRAINABLE, PretrainConfig


def parser() -> ArgumentParser:
    d = PretrainConfig()
    p = ArgumentParser(prog="python -m mars_segformer.pretrain", description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="a tile file (course layout, or unlabelled tiles alone: test_set only) "
                   "or folder, or a Hub dataset (default: the embedded sample)")
    p.add_argument("--output_dir", required=True, help="where the backbone checkpoint is written")
    p.add_argument("--model", default=d.model, choices=PRETRAINABLE, help="the preset whose backbone is pretrained")
    p.add_argument("--tiny", action="store_true", help="tiny widths of the preset (tests, smoke runs)")
    p.add_argument("--max_steps", type=int, default=d.max_steps)
    p.add_argument("--batch_size", type=int, default=d.batch_size, help="tiles per step (two views of each)")
    p.add_argument("--learning_rate", type=float, default=d.learning_rate, help="AdamW's peak rate (cosine schedule)")
    p.add_argument("--weight_decay", type=float, default=d.weight_decay)
    p.add_argument("--warmup_ratio", type=float, default=d.warmup_ratio, help="share of steps with a linear warm-up")
    p.add_argument("--momentum", type=float, default=d.momentum, help="key encoder's momentum at the start (cosine to 1)")
    p.add_argument("--queue_size", type=int, default=d.queue_size, help="negatives kept per queue")
    p.add_argument("--temperature", type=float, default=d.temperature)
    p.add_argument("--local_weight", type=float, default=d.local_weight, help="weight of the dense term (rest: global)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed, and the split whose validation frames are kept out")
    p.add_argument("--val_fraction", type=float, default=d.val_fraction, help="the later run's --val_fraction")
    p.add_argument("--save_steps", type=int, default=d.save_steps)
    p.add_argument("--logging_steps", type=int, default=d.logging_steps)
    p.add_argument("--torch_threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--overwrite", action="store_true", help="start again in an --output_dir that holds a run")
    return p


def prepare_folder(out: Path, overwrite: bool) -> str:
    """``"new"``, ``"resume"`` or ``"finished"`` for ``out``; with ``overwrite`` an earlier run's files are
    removed (only those). A folder holding something else is refused, so nothing of it is lost."""
    import shutil

    from .hub.backbone_card import BACKBONE_FILES
    from .training.pretrain_outputs import STATE

    check_output_folder(out, "--output_dir")
    if not out.exists() or not any(out.iterdir()):
        return "new"
    ours = (out / STATE).is_file() or (out / "pretrain.json").is_file()
    if not ours:
        raise OutputPathError(f"--output_dir {out}: holds files that are not a pretraining run's; pick an empty "
                              "or new folder")
    if overwrite:
        shutil.rmtree((out / STATE).parent, ignore_errors=True)
        for name in BACKBONE_FILES:
            (out / name).unlink(missing_ok=True)
        return "new"
    return "resume" if (out / STATE).is_file() else "finished"


def main(argv=None) -> int:
    args = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    config = PretrainConfig(**{k: getattr(args, k) for k in PretrainConfig.__dataclass_fields__})
    out = Path(args.output_dir)
    try:
        config.check()
        import importlib.util

        if importlib.util.find_spec("lightly") is None:
            raise RunError("pretraining needs lightly (DenseCL's heads and losses): pip install 'mars-segformer[pretrain]'")
        state = prepare_folder(out, args.overwrite)
        if state == "finished":
            print(f"[pretrain] {out}: finished already (pretrain.json); --overwrite trains again")
            return 0
        from .data.dataset import DataConfig
        from .data.sources import load_arrays
        from .data.views import pretraining_images

        arrays = load_arrays(args.data, images_only=True)  # pretraining needs no labels
        images, record = pretraining_images(arrays, DataConfig(val_fraction=config.val_fraction, seed=config.seed))
        record["source"] = str(arrays.source)
        return _run(images, out, config, record, args.torch_threads)
    except (MarsDataError, OutputPathError, RunError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run(images, out: Path, config: PretrainConfig, record: dict, threads: int | None) -> int:
    import torch

    from .training.faults import STOPPED_EXIT_CODE, GracefulStop, RunLock, RunLocked
    from .training.pretraining import pretrain

    if threads:
        torch.set_num_threads(threads)
    print(f"[pretrain] DenseCL on the {config.model} backbone{' (tiny)' if config.tiny else ''}: {len(images)} images "
          f"({record['labelled_tiles']} labelled, {record['unlabelled_tiles']} unlabelled; kept out: "
          f"{record['validation_tiles_excluded']} validation tiles, {record['unlabelled_tiles_excluded']} unlabelled "
          f"tiles of validation frames), {config.max_steps} steps x {config.batch_size}, "
          f"{torch.get_num_threads()} torch thread(s), {torch.backends.cpu.get_cpu_capability()}", flush=True)
    stop = GracefulStop().install()
    try:
        with RunLock(out):
            result = pretrain(images, out, config, record, progress=lambda m: print(m, flush=True), stop=stop)
    except RunLocked as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        stop.restore()
    if result is None:
        print(f"[pretrain] stopped by {stop.name}; the same command continues from there", file=sys.stderr)
        return STOPPED_EXIT_CODE
    print(f"[pretrain] wrote {out} ({result['images_per_s']} img/s, loss {result['loss_first']:.3f} -> "
          f"{result['loss_last']:.3f}); start a run from it with: python train_hf.py --model {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
