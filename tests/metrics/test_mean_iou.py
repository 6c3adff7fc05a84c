import os
import subprocess
import sys

import numpy as np
import pytest

from mars_segformer.metrics import MEAN_IOU_PATH, StreamingMeanIoU, confusion_matrix, scores_from_confusion


def brute_force(preds, refs, k, ignore):
    """Per-class IoU by counting pixel sets directly (no confusion matrix)."""
    p = np.concatenate([x.ravel() for x in preds])
    r = np.concatenate([x.ravel() for x in refs])
    keep = r != ignore if ignore is not None else np.ones_like(r, bool)
    p, r = p[keep], r[keep]
    ious = []
    for c in range(k):
        inter = np.sum((p == c) & (r == c))
        union = np.sum((p == c) | (r == c))
        ious.append(inter / union if union else np.nan)
    return np.array(ious), float(np.mean(p == r)) if len(r) else np.nan


def test_matches_brute_force_with_absent_class():
    rng = np.random.default_rng(0)
    preds = [rng.integers(0, 4, (16, 16)) for _ in range(5)]  # class 4 never predicted
    refs = [rng.integers(0, 4, (16, 16)) for _ in range(5)]  # nor present: its IoU is NaN
    s = StreamingMeanIoU(5, ignore_index=0)
    for p, r in zip(preds, refs, strict=True):
        s.update(p, r)
    out = s.compute()
    ious, acc = brute_force(preds, refs, 5, 0)
    np.testing.assert_allclose(out["per_category_iou"], ious, equal_nan=True)
    assert np.isnan(out["per_category_iou"][4])
    assert out["mean_iou"] == pytest.approx(np.nanmean(ious))
    assert out["task_mean_iou"] == pytest.approx(np.nanmean(ious[1:]))
    assert out["overall_accuracy"] == pytest.approx(acc)


def test_background_counts_as_zero_in_mean_iou_but_not_in_task_score():
    ref = np.array([[0, 1, 2, 2]])
    pred = np.array([[1, 1, 0, 2]])  # predicting background on a labelled pixel
    out = scores_from_confusion(confusion_matrix(pred, ref, 5, 0), ignore_index=0)
    assert out["per_category_iou"][0] == 0.0  # as evaluate's mean_iou does
    assert out["task_mean_iou"] == pytest.approx(np.mean([1.0, 0.5]))
    assert out["mean_iou"] == pytest.approx(np.mean([0.0, 1.0, 0.5]))


def test_all_ignored_batches_change_nothing():
    s = StreamingMeanIoU(5, 0)
    s.update(np.ones((4, 4), int), np.zeros((4, 4), int))
    assert s.matrix.sum() == 0
    assert np.isnan(s.compute()["task_mean_iou"])
    s.update(np.array([[1]]), np.array([[1]]))
    assert s.compute()["task_mean_iou"] == 1.0


def test_tensor_batches_are_counted_where_they_are_as_numpy_counts_them():
    import torch

    rng = np.random.default_rng(1)
    s, ref_matrix = StreamingMeanIoU(5, 0), np.zeros((5, 5), np.int64)
    for k in range(6):
        pred, ref = rng.integers(-1, 6, (4, 8, 16)), rng.integers(-1, 6, (4, 8, 16))  # out-of-range on both sides
        if k == 0:
            pred = np.clip(pred, 0, 5)  # as uint8 predictions (argmax class ids) come
        ref_matrix += confusion_matrix(pred, ref, 5, 0)
        if k % 3 == 2:  # numpy batches between tensor ones
            s.update(pred, ref)
        else:
            p = torch.from_numpy(pred).to(torch.uint8) if k == 0 else torch.from_numpy(pred)
            s.update(p, torch.from_numpy(ref))
    np.testing.assert_array_equal(s.matrix, ref_matrix)
    assert s.compute()["task_mean_iou"] == pytest.approx(scores_from_confusion(ref_matrix, 0)["task_mean_iou"])


def test_streaming_memory_is_constant():
    s = StreamingMeanIoU(5, 0)
    rng = np.random.default_rng(0)
    for _ in range(50):
        s.update(rng.integers(0, 5, (32, 64, 128)), rng.integers(0, 5, (32, 64, 128)))
    assert s.matrix.shape == (5, 5) and s.matrix.sum() > 50 * 32 * 64 * 128 * 0.7


def test_evaluate_load_by_path_offline():
    code = (
        "import evaluate, numpy as np\n"
        f"m = evaluate.load({MEAN_IOU_PATH!r})\n"
        "r = np.random.default_rng(1)\n"
        "p = [r.integers(0, 5, (8, 8)) for _ in range(3)]; t = [r.integers(0, 5, (8, 8)) for _ in range(3)]\n"
        "o = m.compute(predictions=p, references=t, num_labels=5, ignore_index=0)\n"
        "print(repr(o['task_mean_iou']), repr(o['mean_iou']))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    task, mean = map(float, out.stdout.split()[-2:])
    r = np.random.default_rng(1)
    p = [r.integers(0, 5, (8, 8)) for _ in range(3)]
    t = [r.integers(0, 5, (8, 8)) for _ in range(3)]
    ious, _ = brute_force(p, t, 5, 0)
    assert task == pytest.approx(np.nanmean(ious[1:]))
    assert mean == pytest.approx(np.nanmean(ious))
