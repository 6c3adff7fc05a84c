"""bench/ensemble.py: the mean of several runs' probabilities, scored by counting pixels."""

import numpy as np
import pytest

from bench.ensemble import ensemble_rows


def _iou_by_counting(preds, truths, c):
    keep = truths > 0
    inter = np.sum((preds == c) & (truths == c) & keep)
    union = np.sum(((preds == c) | (truths == c)) & keep)
    return inter / union


def test_each_row_scores_the_argmax_of_the_mean_of_the_first_runs():
    rng = np.random.default_rng(0)
    truths = rng.integers(0, 5, (6, 8, 16)).astype(np.uint8)
    probs = [rng.dirichlet(np.ones(5), (6, 8, 16)).transpose(0, 3, 1, 2).astype(np.float32) for _ in range(3)]
    rows = ensemble_rows(probs, truths)
    assert [r["runs"] for r in rows] == [1, 2, 3]
    for k, row in enumerate(rows, start=1):
        # the mean probability, class by class, written out here rather than taken from the script
        mean = sum(probs[:k]) / k
        preds = np.stack([mean[:, c] for c in range(5)]).argmax(axis=0)
        ious = [_iou_by_counting(preds, truths, c) for c in range(1, 5)]
        assert row["task_mean_iou"] == pytest.approx(np.mean(ious))
        assert row["big_rock"] == pytest.approx(ious[3])
        hit = np.sum((preds == 4) & (truths == 4))
        assert row["big_rock_recall"] == pytest.approx(hit / np.sum(truths == 4))
        assert row["big_rock_precision"] == pytest.approx(hit / np.sum((preds == 4) & (truths > 0)))


def test_unshift_scores_each_model_as_trained(tmp_path):
    """``--unshift``: a saved model whose classifier carries a folded logit shift predicts, with the shift taken
    off, what the same model saved before the fold predicts; without it, softmax(log p + shift)."""
    import torch

    from bench.ensemble import run_probs
    from mars_segformer import create_model
    from mars_segformer.models.logit_adjustment import fold_logit_adjustment

    torch.manual_seed(0)
    model = create_model("upernet-r18", tiny=True).eval()
    model.save_pretrained(tmp_path / "plain")
    weights = [0.0, 0.5, 1.0, 2.0, 8.0]
    shift = fold_logit_adjustment(model, weights, 0.7)
    model.save_pretrained(tmp_path / "shifted")
    images = np.random.default_rng(1).integers(0, 256, (3, 64, 128)).astype(np.uint8)
    plain = run_probs(tmp_path / "plain", images)
    expected = torch.softmax(torch.log(torch.from_numpy(plain)) + torch.tensor(shift).view(1, -1, 1, 1), dim=1)
    np.testing.assert_allclose(run_probs(tmp_path / "shifted", images), expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(run_probs(tmp_path / "shifted", images, unshift=True), plain, atol=1e-5)
    # a run saved before configs recorded the shift: only its metrics.json names it, and it still comes off
    import json

    from mars_segformer.models.logit_adjustment import SHIFT_ATTR

    setattr(model.config, SHIFT_ATTR, None)
    model.save_pretrained(tmp_path / "older")
    (tmp_path / "older" / "metrics.json").write_text(json.dumps({"logit_shift": shift}))
    np.testing.assert_allclose(run_probs(tmp_path / "older", images, unshift=True), plain, atol=1e-5)
