"""Every CLI, fed the mistakes a new user makes: exit code 2, one line naming the problem, no traceback,
and every file that existed before byte-identical after (nothing half-written, nothing replaced)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mars_segformer import create_model, make_image_processor
from mars_segformer.eda import main as eda_main
from mars_segformer.predict import main as predict_main
from mars_segformer.pretrain import main as pretrain_main
from mars_segformer.training import main as train_main
from push_to_hub import main as push_main

#: one xdist worker runs this module (`--dist loadgroup`), so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group(__name__)

TRAIN_BASE = ["--model", "unet", "--tiny", "--max_steps", "1", "--disable_tqdm", "true"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A folder of inputs, good and bad, shared by every case (each case checks it is left unchanged)."""
    w = tmp_path_factory.mktemp("world")
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (24, 2, 64, 128)).astype(np.uint8)
    train[:, 1] %= 5
    np.savez_compressed(w / "good.npz", training_set=train, test_set=train[:6, 0])
    good = (w / "good.npz").read_bytes()
    (w / "empty.npz").write_bytes(b"")
    damaged = bytearray(good)
    damaged[2000:2300] = bytes(300)
    (w / "corrupt.npz").write_bytes(bytes(damaged))
    (w / "truncated.npz").write_bytes(good[: len(good) // 2])
    (w / "text.npz").write_text("not an archive\n")
    np.savez(w / "unlabelled.npz", test_set=train[:6, 0])  # unlabelled tiles alone: pretraining only
    np.savez(w / "unlabelled_4d.npz", test_set=train[:6])  # ... but given with masks
    (w / "a_file").write_text("I am a file\n")
    torch.manual_seed(0)
    model_dir = w / "model"
    create_model("unet", tiny=True).save_pretrained(model_dir)
    make_image_processor().save_pretrained(model_dir)
    teacher = w / "teacher"  # a run folder's model and split record, as --teachers expects them
    shutil.copytree(model_dir, teacher)
    (teacher / "split.json").write_text(json.dumps({"seed": 0, "validation_tiles": 5, "data": "good.npz"}))
    bad_weights = w / "bad_weights"
    shutil.copytree(model_dir, bad_weights)
    blob = (bad_weights / "model.safetensors").read_bytes()
    (bad_weights / "model.safetensors").write_bytes(blob[: len(blob) // 3])
    # a run folder as train_hf.py leaves it, and damaged copies of its metrics/config
    run = w / "run"
    shutil.copytree(model_dir, run)
    (run / "metrics.json").write_text(json.dumps({"validation": {"task_mean_iou": 0.5}, "model": "unet"}))
    for name, text in (("run_badjson", "{not json"), ("run_novalidation", json.dumps({"model": "unet"})),
                       ("run_badvalidation", json.dumps({"validation": {"task_mean_iou": "high"}}))):
        shutil.copytree(run, w / name)
        (w / name / "metrics.json").write_text(text)
    shutil.copytree(run, w / "run_badconfig")
    (w / "run_badconfig" / "config.json").write_text("]")
    # an earlier predict output that a failed call must not touch
    prev = w / "prev_preds"
    prev.mkdir()
    np.savez(prev / "predictions.npz", masks=np.ones((6, 64, 128), np.uint8))
    (prev / "summary.json").write_text("{}")
    (w / "typo.yaml").write_text("model: unet\nlearning_rte: 0.001\n")
    (w / "list.yaml").write_text("- model\n- unet\n")
    (w / "bad.yaml").write_text("model: [unet\n")
    # a run folder with arguments but no checkpoint
    (w / "no_ckpt").mkdir()
    # a run killed while writing its only checkpoint (trainer_state.json is written last)
    (w / "half_ckpt" / "checkpoint-4").mkdir(parents=True)
    (w / "half_ckpt" / "checkpoint-4" / "model.safetensors").write_bytes(b"half-written")
    # killed while the Trainer wrote trainer_state.json (a plain open("w") then one write): the file is cut short
    (w / "cut_ckpt" / "checkpoint-4").mkdir(parents=True)
    (w / "cut_ckpt" / "checkpoint-4" / "trainer_state.json").write_text('{"global_step": 4, "log_hi')
    return w


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


W = "{w}"  # replaced by the world folder in each case

CASES = [
    # --- train_hf.py -------------------------------------------------------------------------------
    ("train", ["--learning_rate", "-0.01"], "--learning_rate must be a positive number"),
    ("train", ["--learning_rate", "nan"], "--learning_rate must be a positive number"),
    ("train", ["--learning_rate", "1e-9"], "must exceed the polynomial schedule's final rate 1e-07"),
    ("train", ["--per_device_train_batch_size", "0"], "--per_device_train_batch_size must be at least 1"),
    ("train", ["--per_device_eval_batch_size", "-1"], "--per_device_eval_batch_size must be at least 1"),
    ("train", ["--max_steps", "0"], "--max_steps must be -1"),
    ("train", ["--max_steps", "-1", "--num_train_epochs", "0"], "--num_train_epochs must be a positive number"),
    ("train", ["--weight_decay", "-1"], "--weight_decay must be >= 0"),
    ("train", ["--max_grad_norm", "-0.5"], "--max_grad_norm must be >= 0"),
    ("train", ["--early_stopping_patience", "-1"], "--early_stopping_patience must be >= 0"),
    ("train", ["--val_fraction", "1.5"], "--val_fraction must lie in (0, 1)"),
    ("train", ["--val_fraction", "0"], "--val_fraction must lie in (0, 1)"),
    ("train", ["--train_frames", "0.5"], "--train_frames must be 'START:STOP'"),
    ("train", ["--train_frames", "0.6:0.2"], "--train_frames needs 0 <= START < STOP <= 1"),
    ("train", ["--cutmix_p", "2"], "--cutmix_p is a probability in [0, 1]"),
    ("train", ["--data", f"{W}/unlabelled.npz"], "unlabelled.npz: missing key 'training_set' (keys found: ['test_set'])"),
    ("train", ["--oversample_big_rock", "-3"], "--oversample_big_rock is a number of copies"),
    ("train", ["--outlier_min_count", "1"], "--outlier_min_count must be at least 2"),
    ("train", ["--num_preview", "-1"], "--num_preview must be >= 0"),
    ("train", ["--focal_gamma", "-1"], "--focal_gamma must be >= 0"),
    ("train", ["--augmentations", "hflip,zoom"], "--augmentations: unknown name(s) ['zoom']"),
    ("train", ["--loss", "hinge"], "--loss 'hinge': unknown loss 'hinge'"),
    ("train", ["--loss", "focal:abc"], "--loss 'focal:abc'"),
    ("train", ["--loss", "focal:-1"], "must be a finite number >= 0"),
    ("train", ["--loss", "focal,lovaz"], "unknown loss 'lovaz'"),
    ("train", ["--ohem_keep", "0"], "--ohem_keep is the share of pixels the 'ohem' loss keeps, in (0, 1]"),
    ("train", ["--ohem_keep", "1.5"], "--ohem_keep is the share of pixels"),
    ("train", ["--logit_adjustment", "-0.5"], "--logit_adjustment is 'auto' or the share of log(class weight) taken off each logit, a number in [0, 2], got '-0.5'"),
    ("train", ["--logit_adjustment", "nan"], "--logit_adjustment is 'auto' or the share of log(class weight)"),
    ("train", ["--logit_adjustment", "automatic"], "--logit_adjustment is 'auto' or the share"),
    ("train", ["--logit_adjustment", "1", "--class_weights", "none"], "--logit_adjustment undoes the class weights"),
    ("train", ["--weight_averaging", "emma"], "--weight_averaging: expected 'none', 'ema[:DECAY]' or 'swa[:START[:LR]]'"),
    ("train", ["--weight_averaging", "swa:0.75:1.5"], "--weight_averaging: SWA's held learning rate (a share of the peak rate) must lie in (0, 1), got 1.5"),
    ("train", ["--weight_averaging", "ema:0.99:0.2"], "--weight_averaging: only 'swa' takes a learning rate after its start"),
    ("train", ["--weight_averaging", "swa:0.75:0.25", "--lr_scheduler_type", "cosine"], "a held SWA learning rate replaces a linear or polynomial schedule, got --lr_scheduler_type cosine"),
    ("train", ["--weight_averaging", "ema:1.2"], "--weight_averaging: the EMA decay must lie in (0, 1)"),
    ("train", ["--copy_paste_p", "0"], "--copy_paste_p is a probability in (0, 1], got 0.0"),
    ("train", ["--head_dropout", "1"], "--head_dropout must lie in [0, 1) (a share of channels), got 1.0"),
    ("train", ["--head_dropout", "0.1"], "--head_dropout 0.1: drops channels before an UperNet decode head's classifier, and this model is a"),
    ("train", ["--drop_path", "-0.1"], "--drop_path must lie in [0, 1) (the last block's drop probability), got -0.1"),
    ("train", ["--drop_path", "0.1"], "--drop_path 0.1: drops residual branches of a ResNet backbone, and this model is a"),
    ("train", ["--weight_averaging", "swa:late"], "--weight_averaging: the value after 'swa:' must be a number"),
    ("train", ["--repeat_factor_threshold", "-0.1"], "--repeat_factor_threshold is a share of tiles in [0, 1]"),
    ("train", ["--repeat_factor_threshold", "0.3", "--oversample_big_rock", "4"], "use one of them"),
    ("train", ["--augmentations", "hflip,copypaste"], "--augmentations: unknown name(s) ['copypaste']"),
    ("train", ["--augmentations", "frame_shift,frame_zoom"], "--augmentations: name one of frame_shift and frame_zoom"),
    # transformers says what it found on further lines; the error keeps them on its one line
    ("train", ["--eval_strategy", "no", "--save_strategy", "epoch"],
     "but found - Evaluation strategy: IntervalStrategy.NO - Save strategy: SaveStrategy.EPOCH"),
    ("train", ["--teachers", f"{W}/model"], f"--teachers {W}/model: expected a trained run folder (or a checkpoint "
     "in one) with config.json and the run's split.json"),
    ("train", ["--teachers", f"{W}/teacher", "--cutmix_p", "0.5"],
     "--teachers: --cutmix_p brings pixels without teacher probabilities; distil without it"),
    ("train", ["--teachers", f"{W}/teacher", "--teacher_view", "whole"],
     "--teacher_view must be one of tile, frame, got 'whole'"),
    ("train", ["--self_distill", "1"], "--self_distill is the share of the training steps before the run teaches "
     "itself, in [0, 1), got 1.0"),
    ("train", ["--teachers", f"{W}/teacher", "--self_distill", "0.3"],
     "--teachers and --self_distill both give the soft labels; use one of them"),
    ("train", ["--self_distill", "0.3", "--cutmix_p", "0.5"],
     "--self_distill: --cutmix_p brings pixels without teacher probabilities"),
    ("train", ["--distill_weight", "-1"], "--distill_weight must be a number >= 0, got -1.0"),
    ("train", ["--frame_read_p", "1.5"], "--frame_read_p is a probability in [0, 1], got 1.5"),
    ("train", ["--frame_read_p", "nan"], "--frame_read_p is a probability in [0, 1], got nan"),
    ("train", ["--augmentations", "hflip,frame_zoom", "--frame_zoom_until", "0"],
     "--frame_zoom_until is a share of the training steps in (0, 1], got 0.0"),
    ("train", ["--frame_zoom_until", "0.7"],
     "--frame_zoom_until 0.7 ends frame_zoom's zoom, but --augmentations 'hflip,frame_shift' does not name frame_zoom"),
    ("train", ["--extra_share", "0.7"], "--extra_share 0.7 needs --extra_data"),
    ("train", ["--extra_data", f"{W}/good.npz", "--extra_share", "1.5"], "--extra_share must lie in (0, 1)"),
    ("train", ["--encoder_lr_scale", "0"], "--encoder_lr_scale must be a positive number"),
    ("train", ["--freeze_encoder_steps", "-4"], "--freeze_encoder_steps must be >= 0"),
    ("train", ["--layer_lr_decay", "1.5"], "--layer_lr_decay must lie in (0, 1]"),
    ("train", ["--loaded_lr_scale", "0"], "--loaded_lr_scale must be a positive number"),
    ("train", ["--keep_plots", "-3"], "--keep_plots is a number of evaluations (-1: all)"),
    ("train", ["--plot_every", "0"], "--plot_every is a number of evaluations, at least 1"),
    ("train", ["--channels_last", "maybe"], "--channels_last must be 'auto', 'true' or 'false'"),
    ("train", ["--ema_warmup", "sometimes"], "--ema_warmup expects true or false, got 'sometimes'"),
    ("train", ["--model_revision", "nope"], "--model_revision 'nope' picks a revision of a Hub repo; --model unet is a preset"),
    ("train", ["--model", f"{W}/model", "--model_revision", "nope"], "is a local folder"),
    ("train", ["--input_scale", "0"], "--input_scale is the factor tiles are resized by, in [0.25, 4]"),
    ("train", ["--input_scale", "inf"], "--input_scale is the factor tiles are resized by"),
    ("train", ["--model_overrides", "{bad"], "--model_overrides is not valid JSON"),
    ("train", ["--model_overrides", "[1, 2]"], "--model_overrides must be a JSON object"),
    ("train", ["--model_overrides", '{"nope_field": 3}'], "unknown config field(s) ['nope_field']"),
    # a value the config takes but the layers cannot run: caught by one forward pass before training
    ("train", ["--model", "upernet-convnext-atto-s2", "--model_overrides", '{"patch_size": 0}'],
     "--model_overrides '{\"patch_size\": 0}' do not fit --model upernet-convnext-atto-s2: non-positive stride"),
    # a value the checkpoint config's own checks refuse: refused before training, not at the best checkpoint's reload
    ("train", ["--model", f"{W}/model", "--tiny", "false", "--model_overrides", '{"depth": 0}'],
     f"--model_overrides: {W}/model's mars_unet config rejects them: depth must be >= 1, got 0"),
    ("train", ["--model", f"{W}/model", "--tiny", "false", "--model_overrides", '{"base_channels": 0}'],
     f"--model_overrides '{{\"base_channels\": 0}}' do not fit --model {W}/model: Given groups=1"),
    ("train", ["--class_weights", "1,-2,1,1,1"], "--class_weights must be non-negative finite numbers"),
    ("train", ["--class_weights", "0,0,0,0,0"], "--class_weights must not all be 0"),
    ("train", ["--class_weights", "1,2"], "--class_weights needs 5 numbers"),
    ("train", ["--class_weights", "auto:strong"], "needs a number P"),
    ("train", ["--model", "unet-xl"], "unknown --model 'unet-xl'"),
    ("train", ["--torch_threads", "0"], "--torch_threads must be 'auto' or a positive integer"),
    ("train", ["--lr_scheduler_type", "bogus"], "--lr_scheduler_type expects one of linear, cosine,"),
    ("train", ["--data", f"{W}/missing.npz"], "missing.npz: no such file"),
    ("train", ["--data", f"{W}/empty.npz"], "empty.npz: not a readable .npz archive"),
    ("train", ["--data", f"{W}/corrupt.npz"], "corrupt.npz: could not read arrays, the file is damaged"),
    ("train", ["--data", f"{W}/truncated.npz"], "truncated.npz: not a readable .npz archive"),
    ("train", ["--data", f"{W}/text.npz"], "text.npz: not a readable .npz archive"),
    ("train", ["--output_dir", f"{W}/a_file"], "--output_dir {w}/a_file: exists and is a file"),
    ("train", ["--output_dir", f"{W}/a_file/run"], "a_file is a file, so no folder can be made below it"),
    ("train", ["--output_dir", f"{W}/no_ckpt", "--resume_from_checkpoint", "true"], "holds no checkpoint-* folder"),
    ("train", ["--resume_from_checkpoint", f"{W}/nowhere"], "nowhere: not a complete checkpoint folder"),
    ("train", ["--output_dir", f"{W}/half_ckpt", "--resume_from_checkpoint", "true"],
     "half_ckpt was written to the end (none of checkpoint-4 has a readable trainer_state.json)"),
    ("train", ["--resume_from_checkpoint", f"{W}/cut_ckpt/checkpoint-4"],
     "cut_ckpt/checkpoint-4: not a complete checkpoint folder (no readable trainer_state.json)"),
    ("train-config", [f"{W}/typo.yaml"], "typo.yaml: unknown key 'learning_rte' (did you mean 'learning_rate'?)"),
    ("train-config", [f"{W}/list.yaml"], "list.yaml: expected a mapping of flag names to values"),
    ("train-config", [f"{W}/bad.yaml"], "bad.yaml: not valid YAML/JSON"),
    ("train-config", [f"{W}/missing.yaml"], "missing.yaml: config file not found"),
    ("train", ["--learnig_rate", "0.1"], "unknown flag --learnig_rate (did you mean --learning_rate?)"),
    # --- python -m mars_segformer.predict ------------------------------------------------------------
    ("predict", ["--batch-size", "-5"], "--batch-size must be at least 1, got -5"),
    ("predict", ["--tta-scales", "1,big"], "--tta-scales must be comma-separated numbers"),
    ("predict", ["--tta-scales", "0.1,1"], "--tta-scales must be numbers in [0.25, 4]"),
    ("predict", ["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    ("predict", ["--overlays", "-1"], "--overlays must be >= 0"),
    ("predict", ["--split", "validation", "--val-fraction", "0"], "--val-fraction must lie in (0, 1)"),
    ("predict", ["--data", f"{W}/empty.npz"], "empty.npz: not a readable .npz archive"),
    ("predict", ["--data", f"{W}/corrupt.npz"], "corrupt.npz: could not read arrays, the file is damaged"),
    ("predict", ["--data", f"{W}/missing.npz"], "missing.npz: no such file"),
    ("predict", ["--model", f"{W}/bad_weights"], "bad_weights: the weights file is damaged"),
    ("predict", ["--model", f"{W}/no_such_model"], "no_such_model: cannot load a segmentation model"),
    ("predict", ["--out", f"{W}/a_file"], "--out {w}/a_file: exists and is a file"),
    ("predict", ["--out", f"{W}/a_file/preds"], "a_file is a file, so no folder can be made below it"),
    ("predict", ["--tta", "rot90"], "invalid choice: 'rot90'"),
    ("predict", ["--images", f"{W}/text.npz"], "text.npz: not a readable image"),
    ("predict", ["--images", f"{W}/no_ckpt"], "no_ckpt: the folder holds no image files"),
    ("predict", ["--images", f"{W}/*.nothing"], "the pattern matches no file"),
    ("predict", ["--images", f"{W}/missing.png"], "missing.png: no such file or folder"),
    ("predict", ["--images", f"{W}/a_file", "--image-scale", "0"], "--image-scale must be a positive number"),
    ("predict", ["--images", f"{W}/a_file", "--image-scale", "inf"], "--image-scale must be a positive number"),
    ("predict", ["--images", f"{W}/a_file", "--frame-mode", "tiles"], "invalid choice: 'tiles'"),
    ("predict", ["--data", f"{W}/good.npz", "--context", "frame"], "good.npz has no frame ids for its test tiles"),
    ("predict", ["--images", f"{W}/a_file", "--context", "frame"], "--context frame: only with --data"),
    ("predict", ["--context", "frames"], "invalid choice: 'frames'"),
    # --- python -m mars_segformer.eda ----------------------------------------------------------------
    ("pretrain", ["--data", f"{W}/empty.npz"], "empty.npz: not a readable .npz archive"),
    ("pretrain", ["--data", f"{W}/missing.npz"], "missing.npz: no such file"),
    ("pretrain", ["--data", f"{W}/unlabelled_4d.npz"], "unlabelled_4d.npz: key 'test_set' has shape (6, 2, 64, 128): it holds masks; a test set is images only"),
    ("pretrain", ["--model", "segformer-b0"], "--model: invalid choice: 'segformer-b0'"),
    ("pretrain", ["--batch_size", "1"], "--batch_size 1: expected at least 2"),
    ("pretrain", ["--queue_size", "10"], "--queue_size 10: expected at least --batch_size (64)"),
    ("pretrain", ["--local_weight", "2"], "--local_weight 2.0: expected in [0, 1]"),
    ("pretrain", ["--max_steps", "0"], "--max_steps 0: expected at least 1"),
    ("pretrain", ["--learning_rate", "0"], "--learning_rate 0.0: expected above 0"),
    ("pretrain", ["--weight_decay", "-1"], "--weight_decay -1.0: expected 0 or more"),
    ("pretrain", ["--warmup_ratio", "1"], "--warmup_ratio 1.0: expected in [0, 1)"),
    ("pretrain", ["--momentum", "1.5"], "--momentum 1.5: expected in [0, 1]"),
    ("pretrain", ["--temperature", "0"], "--temperature 0.0: expected above 0"),
    ("pretrain", ["--val_fraction", "1"], "--val_fraction 1.0: expected strictly between 0 and 1"),
    ("pretrain", ["--save_steps", "0"], "--save_steps 0: expected at least 1"),
    ("pretrain", ["--logging_steps", "0"], "--logging_steps 0: expected at least 1"),
    ("pretrain", ["--output_dir", f"{W}/a_file"], "--output_dir {w}/a_file: exists and is a file"),
    ("eda", ["--min-count", "-1"], "--min-count must be at least 2"),
    ("eda", [f"{W}/empty.npz"], "empty.npz: not a readable .npz archive"),
    ("eda", [f"{W}/corrupt.npz"], "corrupt.npz: could not read arrays, the file is damaged"),
    ("eda", [f"{W}/truncated.npz"], "truncated.npz: not a readable .npz archive"),
    ("eda", ["--out", f"{W}/a_file"], "--out {w}/a_file: exists and is a file"),
    ("eda", ["--out", f"{W}/a_file/eda"], "a_file is a file, so no folder can be made below it"),
    # --- push_to_hub.py (dry runs: no Hub is needed to find these) ----------------------------------
    ("push", [f"{W}/run_badjson"], "run_badjson/metrics.json: not valid JSON"),
    ("push", [f"{W}/run_novalidation"], "run_novalidation/metrics.json: missing key 'validation'"),
    ("push", [f"{W}/run_badvalidation"], "key 'validation' must hold a number 'task_mean_iou'"),
    ("push", [f"{W}/run_badconfig"], "run_badconfig/config.json: not valid JSON"),
    ("push", [f"{W}/no_such_run"], "no_such_run: no such folder"),
    ("push", [f"{W}/model"], "is not a finished run: missing metrics.json"),
    ("push-repo", ["noslash"], "--repo_id must look like 'user/name'"),
]


def call(kind: str, argv: list[str], w: Path, tmp: Path) -> int:
    out = tmp / "out"
    if kind == "train":
        full = ["--output_dir", str(out), *TRAIN_BASE, *argv]
        return train_main(full)
    if kind == "train-config":
        return train_main([*argv, "--output_dir", str(out), *TRAIN_BASE])
    if kind == "predict":
        base = {"--model": str(w / "model"), "--data": str(w / "good.npz"), "--out": str(w / "prev_preds")}
        for k, v in zip(argv[::2], argv[1::2], strict=True):
            base[k] = v
        return predict_main([x for kv in base.items() for x in kv] + ["--overlays", "2"] * ("--overlays" not in base))
    if kind == "eda":
        pos = [a for a in argv if a.endswith(".npz")] or [str(w / "good.npz")]
        rest = [a for a in argv if not a.endswith(".npz")]
        return eda_main([*pos, *(rest if "--out" in rest else [*rest, "--out", str(out)])])
    if kind == "pretrain":
        return pretrain_main(["--output_dir", str(out), "--tiny", *argv])
    if kind == "push":
        return push_main([argv[0], "--repo_id", "user/x", "--dry_run"])
    if kind == "push-repo":
        return push_main([str(w / "run"), "--repo_id", argv[0], "--dry_run"])
    raise AssertionError(kind)


@pytest.mark.parametrize("kind,argv,needle", CASES, ids=[f"{k}:{' '.join(a)[:60]}" for k, a, _ in CASES])
def test_bad_input_is_one_clear_line(world, tmp_path, capsys, kind, argv, needle):
    argv = [a.replace(W, str(world)) for a in argv]
    needle = needle.replace(W, str(world))
    before = snapshot(world)
    try:
        code = call(kind, argv, world, tmp_path)
    except SystemExit as exit_:  # argparse's own usage errors
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    assert needle in err, err[-2000:]
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:") or ": error:" in line]
    assert len(lines) == 1, err[-2000:]
    assert snapshot(world) == before  # nothing that existed was changed
    assert not (tmp_path / "out").exists()  # and no half-made output folder


def test_every_checked_flag_has_a_case():
    """Each flag that training's checks (``training/checks.py``) or predict's errors name is fed a bad value
    by at least one case above; read from the checking code itself, so a new check without a case fails here."""
    import re

    root = Path(__file__).resolve().parents[1]
    for kind, source, pattern in (("train", "mars_segformer/training/checks.py", r"--([a-z_]+)"),
                                  ("train", "mars_segformer/training/ranges.py", r"--([a-z_]+)"),
                                  ("predict", "mars_segformer/predict.py", r'PredictError\(f?"--([a-z_-]+)'),
                                  ("pretrain", "mars_segformer/training/pretraining.py", r'\("([a-z_]+)", ')):
        named = set(re.findall(pattern, (root / source).read_text()))
        covered = {a[2:] for k, argv, _ in CASES if k == kind for a in argv if a.startswith("--")}
        assert named and named <= covered, f"{kind}: no case for {sorted(named - covered)}"
    assert {k.split("-")[0] for k, _, _ in CASES} == {"train", "predict", "eda", "push", "pretrain"}
