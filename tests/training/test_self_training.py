"""Self-training: pseudo-label thresholds and quotas, the leakage guard, extra data in training, rounds."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mars_segformer.data import (
    DataConfig,
    MarsArrays,
    MarsDataError,
    build_dataset_dict,
    load_arrays,
    load_npz,
)
from mars_segformer.data.io import MARS_LABELS
from mars_segformer.self_train import main as self_train_main
from mars_segformer.training import main as train_main
from mars_segformer.training.pseudo_labels import (
    PseudoLabelConfig,
    check_teacher_labels,
    leakage_guard,
    pseudo_label,
)
from tests.conftest import SHARED_NPZ


class FixedTeacher(torch.nn.Module):
    """Logits read from the image: class = pixel // 51 (0-4), confidence rising with pixel % 51."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.config = SimpleNamespace(num_channels=3, id2label=dict(MARS_LABELS))

    def forward(self, pixel_values):
        from mars_segformer.data.dataset import IMAGE_MEAN, IMAGE_STD

        gray = (pixel_values[:, :1] * IMAGE_STD + IMAGE_MEAN) * 255  # undo the normalisation
        v = gray.round().clamp(0, 254)
        cls = (v // 51).long()
        strength = (v % 51) / 10.0  # 0 .. 5
        logits = torch.zeros(v.shape[0], 5, *v.shape[-2:])
        logits.scatter_(1, cls, strength)
        return SimpleNamespace(logits=logits)


def test_threshold_and_quota_keep_the_confident_pixels_of_every_class():
    rng = np.random.default_rng(0)
    images = rng.integers(51, 255, (6, 64, 128)).astype(np.uint8)  # classes 1-4 only
    images[:, :4, :4] = 204 + 3  # a few weak big-rock pixels (class 4, low confidence)
    teacher = FixedTeacher()
    tiles, masks, record = pseudo_label(teacher, images, None, PseudoLabelConfig(threshold=0.9, quota=0.0, tta="none"),
                                        progress=False)
    from mars_segformer.inference import predict_probs

    probs = predict_probs(teacher, images).numpy()
    conf, pred = probs.max(1), probs.argmax(1)
    expected = np.where(conf >= 0.9, pred, 0)
    np.testing.assert_array_equal(masks, expected[tiles])
    assert record["coverage"]["soil"]["kept_pixels"] == int(((pred == 1) & (conf >= 0.9)).sum())
    # a quota keeps the most confident share of each class even below the threshold
    _, masks_q, rec_q = pseudo_label(teacher, images, None, PseudoLabelConfig(threshold=0.99, quota=0.5, tta="none"),
                                     progress=False)
    for name in ("soil", "bedrock", "sand", "big_rock"):
        cov = rec_q["coverage"][name]
        assert cov["kept_pixels"] >= 0.5 * cov["predicted_pixels"] - 1, name
        assert rec_q["thresholds_used"][name] <= 0.99
    # per-class thresholds override the global one
    _, _, rec_c = pseudo_label(teacher, images, None, PseudoLabelConfig(threshold=0.99, quota=0.0, tta="none",
                                                                       class_thresholds={"big_rock": 0.3}),
                               progress=False)
    assert rec_c["thresholds_used"]["big_rock"] == 0.3 and rec_c["thresholds_used"]["soil"] == 0.99


def test_frame_context_labels_each_tile_as_its_frame_predicted_whole(sample_arrays):
    """``context="frame"``: the pseudo-labels (every pixel kept) are the teacher's prediction of each complete
    frame, joined here apart from the package, cut back into its tiles; frame ids None label tile by tile."""
    from mars_segformer.data.frame_shift import complete_frames
    from mars_segformer.inference import predict_probs
    from tests.inference.test_tile_context import NeighbourModel, block_of, cut

    teacher = NeighbourModel()
    teacher.config.id2label = dict(MARS_LABELS)
    rows = complete_frames(sample_arrays.train_frame_ids)[:24]  # 3 frames
    images, ids = sample_arrays.train_images[rows], sample_arrays.train_frame_ids[rows]
    keep_all = PseudoLabelConfig(threshold=1e-6, quota=0.0, min_kept=0.0, tta="none", context="frame")
    tiles, masks, record = pseudo_label(teacher, images, ids, keep_all, progress=False)
    want = np.concatenate([cut(predict_probs(teacher, block_of(images[i:i + 8], 4)[None]).argmax(1).numpy()[0])
                           for i in (0, 8, 16)])
    assert tiles.tolist() == list(range(24)) and (masks == want).mean() > 0.9999
    assert record["frame_context"] == {"blocks": 3, "tiles_in_frames": 24, "tiles_alone": 0}
    alone = predict_probs(teacher, images).argmax(1).numpy()
    _, masks_t, record_t = pseudo_label(teacher, images, ids, PseudoLabelConfig(threshold=1e-6, quota=0.0,
                                        min_kept=0.0, tta="none"), progress=False)
    np.testing.assert_array_equal(masks_t, alone)
    assert record_t["frame_context"] is None and (masks != masks_t).any()


@pytest.mark.parametrize("bad", [dict(threshold=0), dict(threshold=1.5), dict(quota=1.0), dict(context="frames"),
                                 dict(class_thresholds={"big_rock": 2}), dict(class_thresholds={"lava": 0.5})])
def test_bad_thresholds(bad):
    with pytest.raises(MarsDataError):
        PseudoLabelConfig(**bad).check()


def test_teacher_with_other_labels_is_refused():
    t = FixedTeacher()
    t.config.id2label = {0: "sky", 1: "tree"}
    with pytest.raises(MarsDataError, match="not the data's classes"):
        check_teacher_labels(t, "t")


def _arrays(n_frames=10, test_frames=("f0", "f1", "x9"), seed=0):
    rng = np.random.default_rng(seed)
    ids = np.repeat([f"f{i}" for i in range(n_frames)], 2)
    imgs = rng.integers(0, 255, (len(ids), 64, 128)).astype(np.uint8)
    masks = rng.integers(1, 5, (len(ids), 64, 128)).astype(np.uint8)
    tids = np.array(list(test_frames))
    return MarsArrays(imgs, masks, rng.integers(0, 255, (len(tids), 64, 128)).astype(np.uint8), ids, tids, "synthetic")


def test_leakage_guard_keeps_validation_frames_out():
    from mars_segformer.data.dataset import clean_and_split

    arrays = _arrays()
    _, _, _, va = clean_and_split(arrays, DataConfig(seed=1, drop_outliers=False))
    allowed, info = leakage_guard(arrays, va)
    val_frames = set(arrays.train_frame_ids[va])
    assert info["frame_ids"] and info["excluded_tiles"] == sum(f in val_frames for f in arrays.test_frame_ids)
    assert not set(arrays.test_frame_ids[allowed]) & val_frames
    no_ids = MarsArrays(arrays.train_images, arrays.train_masks, arrays.test_images, None, None, "course")
    allowed, info = leakage_guard(no_ids, va)
    assert len(allowed) == 3 and not info["frame_ids"] and "cannot be matched" in info["note"]


def test_extra_data_joins_training_only_and_never_from_validation_frames():
    arrays = _arrays()
    extra = MarsArrays(arrays.train_images[:8], arrays.train_masks[:8], np.zeros((0, 64, 128), np.uint8),
                       arrays.train_frame_ids[:8], None, "pseudo.npz")
    cfg = DataConfig(seed=1, drop_outliers=False, extra_share=0.5)
    data = build_dataset_dict(arrays, cfg, extra)
    val_frames = set(data.arrays.train_frame_ids[data.val_indices])
    rows = data.datasets["train"]
    extra_rows = [r for r in rows.with_format(None).select_columns(["index", "frame_id"]) if r["index"] < 0]
    assert len(extra_rows) == data.extra["rows"] == len(data.train_indices)  # share 0.5: as many as labelled
    assert not {r["frame_id"] for r in extra_rows} & val_frames
    assert data.extra["excluded_validation_frame_tiles"] == sum(f in val_frames for f in extra.train_frame_ids)
    assert len(data.datasets["validation"]) == len(data.val_indices)  # validation: labelled tiles only
    small = MarsArrays(arrays.train_images[:2, :32], arrays.train_masks[:2, :32], np.zeros((0, 32, 128), np.uint8),
                       None, None, "small.npz")
    with pytest.raises(MarsDataError, match="extra tiles are"):
        build_dataset_dict(arrays, cfg, small)


def test_shared_file_test_frames_are_disjoint_from_training_frames():
    if not SHARED_NPZ.exists():
        pytest.skip(f"{SHARED_NPZ} not present (users' clones have no ../shared)")
    a = load_npz(SHARED_NPZ)
    assert not set(a.train_frame_ids.tolist()) & set(a.test_frame_ids.tolist())
    from mars_segformer.data.dataset import clean_and_split

    _, _, _, va = clean_and_split(a, DataConfig(seed=42))
    allowed, info = leakage_guard(a, va)
    assert info["excluded_tiles"] == 0 and len(allowed) == len(a.test_images)


def test_rounds_run_resume_and_refuse_bad_input(tmp_path, capsys):
    teacher = tmp_path / "teacher"
    base = ["--per_device_train_batch_size", "8", "--eval_strategy", "no", "--save_strategy", "no",
            "--load_best_model_at_end", "false", "--disable_tqdm", "true", "--logit_adjustment", "0"]
    assert train_main(["--output_dir", str(teacher), "--model", "unet", "--tiny", "--max_steps", "3", *base]) == 0
    out = tmp_path / "rounds"
    assert self_train_main(["--teacher", str(teacher), "--out", str(out), "--rounds", "1", "--", "--max_steps", "2",
                            *base]) == 0
    pseudo = out / "round_1" / "pseudo.npz"
    record = json.loads(pseudo.with_suffix(".json").read_text())
    assert record["teacher"] == str(teacher) and set(record["coverage"]) == {"soil", "bedrock", "sand", "big_rock"}
    assert record["leakage_guard"]["frame_ids"] is True
    labelled = load_npz(pseudo)
    assert labelled.train_masks.max() <= 4 and len(labelled) == record["tiles_kept"]
    m1 = json.loads((out / "round_1" / "student" / "metrics.json").read_text())
    assert m1["extra_data"]["source"] == str(pseudo) and m1["base_model"]["source"] == str(teacher)
    stamp = pseudo.stat().st_mtime_ns
    # a second call with two rounds reuses round 1 and adds round 2, taught by round 1's student
    assert self_train_main(["--teacher", str(teacher), "--out", str(out), "--rounds", "2", "--", "--max_steps", "2",
                            *base]) == 0
    assert pseudo.stat().st_mtime_ns == stamp
    r2 = json.loads((out / "round_2" / "pseudo.json").read_text())
    assert r2["teacher"] == str(out / "round_1" / "student")
    capsys.readouterr()
    for argv, needle in ((["--threshold", "1.5"], "threshold must lie in (0, 1)"),
                         (["--class_threshold", "big_rock"], "expects CLASS=VALUE"),
                         (["--rounds", "0"], "--rounds must be at least 1")):
        bad_out = tmp_path / "bad"
        assert self_train_main(["--teacher", str(teacher), "--out", str(bad_out), *argv]) == 2
        assert needle in capsys.readouterr().err and not bad_out.exists()


def test_self_train_guards_exactly_the_students_split(tmp_path):
    """With non-default split flags for the students, the unlabelled tiles kept out are exactly those of the
    frames the student then validates on (its own split.json)."""
    from mars_segformer.data import save_npz

    a = load_arrays()
    rng = np.random.default_rng(0)
    pick = rng.choice(len(a.test_images), 40, replace=False)
    # unlabelled tiles from the labelled frames, so the guard has something to keep out
    test_ids = rng.choice(np.unique(a.train_frame_ids), 40)
    data = tmp_path / "mixed.npz"
    save_npz(MarsArrays(a.train_images, a.train_masks, a.test_images[pick], a.train_frame_ids, test_ids, "mixed"), data)
    base = ["--per_device_train_batch_size", "8", "--eval_strategy", "no", "--save_strategy", "no",
            "--load_best_model_at_end", "false", "--disable_tqdm", "true", "--report_to", "none", "--logit_adjustment", "0"]
    teacher = tmp_path / "teacher"
    assert train_main(["--output_dir", str(teacher), "--data", str(data), "--model", "unet", "--tiny", "--max_steps", "1",
                       *base]) == 0
    out = tmp_path / "rounds"
    student_flags = ["--max_steps", "1", "--seed", "7", "--val_fraction", "0.3", "--outlier_min_count", "5", *base]
    assert self_train_main(["--teacher", str(teacher), "--data", str(data), "--out", str(out), "--threshold", "0.01",
                            "--quota", "0.5", "--min_kept", "0", "--", *student_flags]) == 0
    split = json.loads((out / "round_1" / "student" / "split.json").read_text())
    assert split["seed"] == 7 and split["val_fraction"] == 0.3 and split["outlier_min_count"] == 5
    blocked = np.isin(test_ids, split["validation_frame_ids"])
    assert 0 < blocked.sum() < len(test_ids)
    record = json.loads((out / "round_1" / "pseudo.json").read_text())
    assert record["leakage_guard"]["excluded_tiles"] == int(blocked.sum())
    kept = load_npz(out / "round_1" / "pseudo.npz")
    assert not np.isin(kept.train_frame_ids, split["validation_frame_ids"]).any()
    assert len(kept) == int((~blocked).sum())  # threshold 0.01, min_kept 0: every allowed tile
