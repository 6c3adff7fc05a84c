"""Distillation (--teachers): the teachers' mean probabilities of the training tiles travel with the reads and
are learnt beside the labels; a teacher of another split is refused."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mars_segformer.data import DataConfig, build_dataset_dict
from mars_segformer.data.dataset import MarsTransform, tiles_to_dataset
from mars_segformer.data.frame_shift import ZOOM_SCALE, FrameShift
from mars_segformer.data.io import FRAME_SIZE, TILE_SHAPE
from mars_segformer.losses.soft_ce import soft_cross_entropy
from mars_segformer.training.run import main

TH, TW = TILE_SHAPE
TINY = ["--model", "unet", "--tiny", "--per_device_train_batch_size", "8", "--disable_tqdm", "true",
        "--logit_adjustment", "0", "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false"]


def _coordinate_frame():
    """One frame cut into the file's 4 x 2 tiles: image = row number, mask = column number, and 5 soft-label
    channels (the column number plus 10 c for channel c, kept below 256)."""
    ys, xs = np.mgrid[0:FRAME_SIZE, 0:FRAME_SIZE]
    tiles = [(slice(r * TH, (r + 1) * TH), slice(c * TW, (c + 1) * TW)) for r in range(4) for c in range(2)]
    images = np.stack([ys[t].astype(np.uint8) for t in tiles])
    masks = np.stack([(xs[t] // 2).astype(np.uint8) for t in tiles])
    soft = np.stack([np.stack([(xs[t] // 2 + 10 * c).astype(np.uint8) for c in range(5)]) for t in tiles])
    return images, masks, soft


@pytest.mark.parametrize("scale", [(1.0, 1.0), ZOOM_SCALE])
def test_soft_labels_are_cut_and_resized_with_their_pixels(scale):
    images, masks, soft = _coordinate_frame()
    shift = FrameShift(images, masks, np.array(["f"] * 8), np.arange(8), p=1.0, scale=scale, seed=0, soft=soft)
    for row in range(8):
        for _ in range(10):
            img, msk, cut = shift.read(images[row], masks[row], row, soft[row])
            assert cut.shape == (5, TH, TW) and cut.dtype == np.uint8
            # every channel shows the same columns as the mask (nearest) up to the smooth resize's rounding
            for c in range(5):
                assert np.abs(cut[c].astype(int) - 10 * c - msk.astype(int)).max() <= 1


def test_the_reads_carry_soft_labels_flipped_with_the_mask():
    """MarsTransform with soft labels and hflip: the batch's soft labels are the row's own, mirrored exactly when
    its mask is (the mask's columns say which way the read was flipped)."""
    from mars_segformer.data.augment import build_augmentation

    images, masks, soft = _coordinate_frame()
    ds = tiles_to_dataset(images, masks, ["f"] * 8)
    ds.set_transform(MarsTransform(build_augmentation(["hflip"], seed=0), soft=soft))
    flipped = 0
    for _ in range(4):
        batch = ds[:]
        labels, got = batch["labels"].numpy(), batch["soft_labels"].numpy()
        for k in range(8):
            mirrored = labels[k][0, 0] > labels[k][0, -1]
            flipped += mirrored
            want = soft[k][:, :, ::-1] if mirrored else soft[k]
            np.testing.assert_array_equal(got[k], want)
    assert 0 < flipped < 32


def test_soft_labels_refuse_pasting_augmentations():
    images, masks, soft = _coordinate_frame()
    from mars_segformer.data.augment import CutMix

    with pytest.raises(ValueError, match="CutMix or copy_paste"):
        MarsTransform(None, CutMix(images, masks), soft=soft)


def test_the_soft_cross_entropy_is_torchs_cross_entropy_with_probability_targets():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 8, 16)
    q = torch.softmax(torch.randn(2, 5, 8, 16) * 3, dim=1)
    soft = torch.round(q * 255).to(torch.uint8)
    target = soft.float() / soft.float().sum(1, keepdim=True)
    assert soft_cross_entropy(logits, soft).item() == pytest.approx(F.cross_entropy(logits, target).item(), rel=1e-5)
    # logits at a lower resolution are resized to the labels' first
    small = torch.randn(2, 5, 4, 8)
    up = F.interpolate(small, size=(8, 16), mode="bilinear", align_corners=False)
    assert soft_cross_entropy(small, soft).item() == pytest.approx(F.cross_entropy(up, target).item(), rel=1e-5)


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    """Two tiny runs of the embedded sample on the split of seed 3, and one on seed 4's."""
    root = tmp_path_factory.mktemp("teachers")
    for name, seed in (("a", 3), ("b", 3), ("other", 4)):
        assert main(["--output_dir", str(root / name), *TINY, "--seed", str(seed), "--max_steps", "2",
                     "--learning_rate", "1e-2"]) == 0
    return root


def test_the_soft_labels_are_the_teachers_mean_probabilities_of_the_training_tiles(teachers, sample_arrays):
    from transformers import AutoModelForSemanticSegmentation

    from mars_segformer.data.dataset import model_pixels
    from mars_segformer.training.distillation import teacher_soft_labels

    data = build_dataset_dict(sample_arrays, DataConfig(seed=3), soft_labels=teacher_soft_labels(
        [str(teachers / "a"), str(teachers / "b")], progress=False))
    soft = data.datasets["train"].format["format_kwargs"]["transform"].soft
    rows = data.train_indices[:16]
    probs = []
    for name in ("a", "b"):  # the oracle: each saved model's softmax, straight from transformers
        model = AutoModelForSemanticSegmentation.from_pretrained(teachers / name).eval()
        with torch.no_grad():
            logits = model(pixel_values=model_pixels(data.arrays.train_images[rows], model.config)).logits
        probs.append(torch.softmax(F.interpolate(logits, size=TILE_SHAPE, mode="bilinear", align_corners=False), 1))
    want = ((probs[0] + probs[1]) / 2 * 255).numpy()
    assert np.abs(soft[rows].astype(float) - want).max() <= 0.51 + 1e-3  # rounded to 1/255
    assert not soft[data.val_indices].any()  # validation rows get none


def _softmax_of(model, images):
    """The oracle: a saved model's class probabilities at the images' size, straight from transformers."""
    from mars_segformer.data.dataset import model_pixels

    with torch.no_grad():
        logits = model(pixel_values=model_pixels(images, model.config)).logits
    return torch.softmax(F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False), 1)


def test_with_teacher_view_frame_the_complete_training_frames_are_seen_whole(teachers, sample_arrays):
    """Tiles of complete training frames get the teachers' probabilities of the frame predicted at once (joined here
    by hand from the file's 4 x 2 row-major layout), cut at the tile; the other training tiles their own."""
    from transformers import AutoModelForSemanticSegmentation

    from mars_segformer.training.distillation import teacher_soft_labels

    names = [str(teachers / "a"), str(teachers / "b")]
    data = build_dataset_dict(sample_arrays, DataConfig(seed=3), soft_labels=teacher_soft_labels(
        names, progress=False, view="frame"))
    soft = data.datasets["train"].format["format_kwargs"]["transform"].soft
    ids, train = np.asarray(data.arrays.train_frame_ids), set(data.train_indices.tolist())
    whole = [r0 for r0 in range(len(ids) - 7) if (r0 == 0 or ids[r0 - 1] != ids[r0]) and (ids[r0:r0 + 8] == ids[r0]).all()
             and (r0 + 8 == len(ids) or ids[r0 + 8] != ids[r0]) and set(range(r0, r0 + 8)) <= train]
    assert len(whole) >= 2, "the sample should hold complete training frames"
    models = [AutoModelForSemanticSegmentation.from_pretrained(n).eval() for n in names]
    images = data.arrays.train_images
    for r0 in whole[:2]:
        tiles = images[r0:r0 + 8]
        frame = np.block([[tiles[2 * r], tiles[2 * r + 1]] for r in range(4)])  # (256, 256)
        want = (sum(_softmax_of(m, frame[None]) for m in models) / 2 * 255)[0].numpy()
        for k in range(8):
            r, c = divmod(k, 2)
            cut = want[:, r * TH:(r + 1) * TH, c * TW:(c + 1) * TW]
            assert np.abs(soft[r0 + k].astype(float) - cut).max() <= 0.51 + 1e-3
    in_frames = {r0 + k for r0 in whole for k in range(8)}
    alone = np.array(sorted(train - in_frames))[:8]
    want = (sum(_softmax_of(m, images[alone]) for m in models) / 2 * 255).numpy()
    assert np.abs(soft[alone].astype(float) - want).max() <= 0.51 + 1e-3


def test_a_student_learns_the_teachers_probabilities_beside_the_labels(teachers, tmp_path, monkeypatch, capsys):
    import mars_segformer.training.trainer as trainer

    calls = []
    real = trainer.soft_cross_entropy
    monkeypatch.setattr(trainer, "soft_cross_entropy", lambda logits, soft: calls.append(soft.shape) or real(logits, soft))
    out = tmp_path / "student"
    assert main(["--output_dir", str(out), *TINY, "--seed", "3", "--max_steps", "3",
                 "--teachers", f"{teachers / 'a'},{teachers / 'b'}", "--distill_weight", "0.5"]) == 0
    assert len(calls) == 3 and all(tuple(s[1:]) == (5, *TILE_SHAPE) for s in calls)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["distillation"] == {"teachers": [str(teachers / "a"), str(teachers / "b")], "weight": 0.5,
                                       "view": "tile"}
    assert "distillation: computing the mean class probabilities of 2 teacher(s)" in capsys.readouterr().out


def test_a_teacher_of_another_split_is_refused_before_anything_is_written(teachers, tmp_path, capsys):
    out = tmp_path / "student"
    assert main(["--output_dir", str(out), *TINY, "--seed", "3", "--max_steps", "1",
                 "--teachers", str(teachers / "other")]) == 2
    err = capsys.readouterr().err
    assert f"--teachers {teachers / 'other'}: trained on another split (seed 4" in err and "Traceback" not in err
    assert not out.exists()


def test_a_teacher_with_a_damaged_split_record_is_one_line(teachers, tmp_path, capsys):
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(teachers / "a", damaged)
    (damaged / "split.json").write_text("{not json")
    out = tmp_path / "student"
    assert main(["--output_dir", str(out), *TINY, "--seed", "3", "--max_steps", "1", "--teachers", str(damaged)]) == 2
    err = capsys.readouterr().err
    assert f"--teachers {damaged}: {damaged / 'split.json'} is not a split record" in err and "Traceback" not in err
    assert not out.exists()


def _tiny_unet():
    from mars_segformer.models import create_model

    torch.manual_seed(0)
    return create_model("unet", tiny=True).eval()


def test_the_self_teacher_starts_at_zero_and_a_refresh_writes_the_models_probabilities(sample_arrays):
    """Zeros (no term) until refreshed; then each training row holds the model's softmax: its complete training
    frames seen whole (joined by hand), the other training rows alone; validation rows stay zero."""
    from mars_segformer.training.distillation import SelfTeacher

    teacher = SelfTeacher("frame", progress=False)
    data = build_dataset_dict(sample_arrays, DataConfig(seed=3), soft_labels=teacher.soft_labels)
    soft = data.datasets["train"].format["format_kwargs"]["transform"].soft
    assert not soft.any()
    model = _tiny_unet()
    teacher.refresh(model)
    assert teacher.refreshes == 1 and not soft[data.val_indices].any()
    images, ids = data.arrays.train_images, np.asarray(data.arrays.train_frame_ids)
    train = set(data.train_indices.tolist())
    r0 = next(r for r in range(len(ids) - 7) if (r == 0 or ids[r - 1] != ids[r]) and (ids[r:r + 8] == ids[r]).all()
              and (r + 8 == len(ids) or ids[r + 8] != ids[r]) and set(range(r, r + 8)) <= train)
    frame = np.block([[images[r0 + 2 * r], images[r0 + 2 * r + 1]] for r in range(4)])
    want = (_softmax_of(model, frame[None]) * 255)[0].numpy()
    for k in range(8):
        r, c = divmod(k, 2)
        assert np.abs(soft[r0 + k].astype(float) - want[:, r * TH:(r + 1) * TH, c * TW:(c + 1) * TW]).max() <= 0.51
    lone = next(r for r in data.train_indices if (ids == ids[r]).sum() != 8)
    want = (_softmax_of(model, images[[lone]]) * 255)[0].numpy()
    assert np.abs(soft[lone].astype(float) - want).max() <= 0.51


class _FirstSoftSum(torch.utils.data.Dataset):
    def __init__(self, soft):
        self.soft = soft

    def __len__(self):
        return 1

    def __getitem__(self, i):
        return int(self.soft[0].sum())


def test_a_persistent_dataloader_worker_reads_what_a_refresh_writes_later(sample_arrays):
    """The soft labels live in shared memory: a worker forked before the refresh sees its values (a plain array
    would stay zero in the worker's copy)."""
    import multiprocessing

    from mars_segformer.training.distillation import SelfTeacher

    teacher = SelfTeacher("tile", progress=False)
    data = build_dataset_dict(sample_arrays, DataConfig(seed=3), soft_labels=teacher.soft_labels)
    soft = data.datasets["train"].format["format_kwargs"]["transform"].soft
    teacher._rows = np.array([0])  # refresh row 0 only: quick
    loader = torch.utils.data.DataLoader(_FirstSoftSum(soft), num_workers=1, persistent_workers=True,
                                         multiprocessing_context=multiprocessing.get_context("fork"))
    assert [int(x) for x in loader] == [0]
    teacher.refresh(_tiny_unet())
    assert int(soft[0].sum()) > 0
    assert [int(x) for x in loader] == [int(soft[0].sum())]


def test_the_callback_refreshes_with_the_averaged_weights_and_gives_the_model_back():
    from mars_segformer.training.averaging import AveragingSpec, WeightAverager
    from mars_segformer.training.callbacks import SelfDistillationCallback

    model = _tiny_unet().train()
    averager = WeightAverager(model, AveragingSpec("ema", 0.5))
    averager.update(model, 1, 10)
    with torch.no_grad():
        for t in model.parameters():
            t.add_(1.0)  # the raw weights move away from the average
    raw = [t.detach().clone() for t in model.parameters()]
    seen = []

    class Teacher:
        view = "frame"

        def refresh(self, m):
            seen.append((m.training, [t.detach().clone() for t in m.parameters()]))

    args, control = type("A", (), {"process_index": 0})(), None
    cb = SelfDistillationCallback(Teacher(), 0.5, averager)
    cb.on_epoch_begin(args, type("S", (), {"global_step": 4, "max_steps": 10})(), control, model=model)
    assert seen == []  # before the start
    cb.on_epoch_begin(args, type("S", (), {"global_step": 5, "max_steps": 10})(), control, model=model)
    training, weights = seen[0]
    assert not training
    for w, a in zip(weights, averager.averaged.module.parameters(), strict=True):
        torch.testing.assert_close(w, a.detach())
    assert model.training
    for t, r in zip(model.parameters(), raw, strict=True):
        torch.testing.assert_close(t.detach(), r)


def test_a_self_distilled_run_learns_its_own_probabilities_from_the_start_share(tmp_path, monkeypatch):
    import mars_segformer.training.trainer as trainer

    sums = []
    real = trainer.soft_cross_entropy
    monkeypatch.setattr(trainer, "soft_cross_entropy",
                        lambda logits, soft: sums.append(int(soft.sum())) or real(logits, soft))
    out = tmp_path / "self"
    steps = 60
    assert main(["--output_dir", str(out), *TINY, "--seed", "3", "--max_steps", str(steps),
                 "--self_distill", "0.5", "--teacher_view", "frame"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    per_epoch = -(-metrics["train_rows_after_oversampling"] // 8)  # steps of one epoch at batch 8
    assert per_epoch < steps  # a second epoch starts, past half the steps: one refresh
    assert len(sums) == steps
    assert all(s == 0 for s in sums[:per_epoch]) and all(s > 0 for s in sums[per_epoch:])
    assert metrics["distillation"] == {"teachers": [], "self_from": 0.5, "refreshes": 1, "weight": 1.0,
                                       "view": "frame"}
