import json
import os

import numpy as np
import pytest
import torch

from mars_segformer import PRESETS, create_model, processor_for
from mars_segformer.data import save_npz
from mars_segformer.inference import (
    PredictError,
    class_ids,
    load_model,
    predict_masks,
    predict_probs,
    read_submission,
    write_submission,
)
from mars_segformer.predict import main as predict_main
from tests.models.test_models import predict


def save_tiny(folder, name="segformer-b0", seed=0):
    torch.manual_seed(seed)
    model = create_model(name, tiny=True).eval()
    model.save_pretrained(folder)
    processor_for(model.config).save_pretrained(folder)
    return model


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_batched_prediction_matches_training_path(name, tmp_path, sample_arrays):
    model = save_tiny(tmp_path, name)
    loaded = load_model(str(tmp_path), device="cpu")
    images = sample_arrays.test_images[:10]
    ref = predict(model, images)
    np.testing.assert_array_equal(predict_masks(loaded, images, batch_size=10, progress=False), ref)
    # other batch sizes take other BLAS paths: float noise may flip a near-tie of an untrained model
    assert (predict_masks(loaded, images, batch_size=4, progress=False) == ref).mean() > 0.999


def test_flip_tta_averages_probabilities(tmp_path, sample_arrays):
    model = save_tiny(tmp_path, "unet")
    images = sample_arrays.test_images[:3]
    plain = predict_probs(model, images, "none")
    flipped = torch.flip(predict_probs(model, images[:, :, ::-1].copy(), "none"), (3,))
    torch.testing.assert_close(predict_probs(model, images, "hflip"), (plain + flipped) / 2)
    # all four flips: each flipped input's probabilities flipped back, averaged (the oracle flips numpy arrays)
    views = [((), images), ((3,), images[:, :, ::-1]), ((2,), images[:, ::-1, :]), ((2, 3), images[:, ::-1, ::-1])]
    expected = sum(torch.flip(predict_probs(model, v.copy(), "none"), d) if d else predict_probs(model, v.copy(), "none")
                   for d, v in views) / 4
    torch.testing.assert_close(predict_probs(model, images, "flips"), expected)
    assert not torch.allclose(expected, plain, atol=1e-3)  # the views do differ, so the average is a real check
    with pytest.raises(PredictError, match="unknown TTA mode 'twirl'"):
        predict_probs(model, images, "twirl")


def test_submission_csv_layout(tmp_path):
    masks = np.random.default_rng(0).integers(0, 5, (3, 64, 128)).astype(np.uint8)
    path = write_submission(masks, tmp_path / "sub.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "id," + ",".join(map(str, range(8192)))
    assert len(lines) == 4 and lines[2].split(",")[0] == "1"
    assert [int(v) for v in lines[3].split(",")[1:]] == masks[2].ravel().tolist()  # row-major
    np.testing.assert_array_equal(read_submission(path), masks)


def test_interrupted_submission_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "sub.csv"
    path.write_text("previous\n")
    real_replace = os.replace

    def boom(*a):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        write_submission(np.zeros((2, 64, 128), np.uint8), path)
    monkeypatch.setattr(os, "replace", real_replace)
    assert path.read_text() == "previous\n" and sorted(p.name for p in tmp_path.iterdir()) == ["sub.csv"]


def test_cli_with_labels_scores_and_writes_everything(tmp_path, sample_arrays, capsys):
    model = save_tiny(tmp_path / "model", "unet")
    out = tmp_path / "out"
    assert predict_main(["--model", str(tmp_path / "model"), "--out", str(out), "--split", "train", "--csv",
                         "--overlays", "3", "--batch-size", "50"]) == 0
    assert "task mean IoU" in capsys.readouterr().out
    preds = np.load(out / "predictions.npz")["masks"]
    np.testing.assert_array_equal(preds, predict(model, sample_arrays.train_images))
    assert len(list((out / "overlays").glob("*.png"))) == 3 and (out / "confusion_matrix.png").exists()
    scores = json.loads((out / "scores.json").read_text())
    keep = sample_arrays.train_masks != 0
    ious = []
    for c in range(1, 5):
        union = np.sum(((preds == c) | (sample_arrays.train_masks == c)) & keep)
        if union:
            ious.append(np.sum((preds == c) & (sample_arrays.train_masks == c) & keep) / union)
    assert scores["task_mean_iou"] == pytest.approx(np.mean(ious))
    np.testing.assert_array_equal(read_submission(out / "submission.csv"), preds)
    assert not list(out.rglob("*.tmp*"))


def test_cli_bad_inputs(tmp_path, capsys, sample_arrays):
    (tmp_path / "empty_model").mkdir()
    assert predict_main(["--model", str(tmp_path / "empty_model"), "--out", str(tmp_path / "o")]) == 2
    assert "cannot load a segmentation model" in capsys.readouterr().err
    bad = tmp_path / "masks_in_test.npz"
    np.savez(bad, training_set=np.zeros((2, 2, 64, 128), np.uint8), test_set=np.zeros((2, 2, 64, 128), np.uint8))
    save_tiny(tmp_path / "m")
    assert predict_main(["--model", str(tmp_path / "m"), "--data", str(bad), "--out", str(tmp_path / "o2")]) == 2
    assert "holds masks" in capsys.readouterr().err
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, training_set=np.zeros((2, 64, 128), np.uint8))
    assert predict_main(["--model", str(tmp_path / "m"), "--data", str(wrong), "--out", str(tmp_path / "o3")]) == 2
    assert "(N, 2, H, W)" in capsys.readouterr().err
    notest = sample_arrays.subset(np.arange(5))
    notest.test_images = np.zeros((0, 64, 128), np.uint8)
    notest.test_frame_ids = None
    save_npz(notest, tmp_path / "notest.npz")
    assert predict_main(["--model", str(tmp_path / "m"), "--data", str(tmp_path / "notest.npz"), "--out",
                         str(tmp_path / "o4")]) == 2
    assert "holds no images" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["segformer-b0", "unet-attention", "deeplabv3plus"])
def test_onnx_export_matches_pytorch(name, tmp_path, sample_arrays):
    pytest.importorskip("onnxruntime", reason="ONNX is an optional extra: pip install -e .[onnx]")
    from mars_segformer.inference.onnx_export import check_onnx, export_onnx

    model = save_tiny(tmp_path / "m", name)
    path = export_onnx(model, tmp_path / "model.onnx")
    res = check_onnx(model, path, sample_arrays.test_images[:8])
    assert res["pixel_agreement"] == 1.0 and res["max_abs_logit_diff"] < 1e-3


def test_validation_split_is_the_runs_own_split(tmp_path, capsys):
    """A run trained with a non-default seed and fraction: ``predict --split validation`` with no split flags
    scores exactly the tiles the Trainer validated on, with the score its metrics.json holds."""
    from mars_segformer.training import main as train_main

    run = tmp_path / "run"
    assert train_main(["--output_dir", str(run), "--model", "unet", "--tiny", "--max_steps", "2", "--seed", "7",
                       "--val_fraction", "0.3", "--eval_strategy", "no", "--save_strategy", "no",
                       "--load_best_model_at_end", "false", "--report_to", "none", "--disable_tqdm", "true"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    out = tmp_path / "val"
    assert predict_main(["--model", str(run), "--out", str(out), "--split", "validation", "--overlays", "0"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tiles"] == metrics["validation_tiles"] == 113  # 0.3 of the sample's frames, not 0.2's 82
    assert summary["scores"]["task_mean_iou"] == pytest.approx(metrics["validation"]["task_mean_iou"], abs=1e-6)
    # a flag that contradicts the run's record is refused; a model without a record needs the flags
    capsys.readouterr()
    assert predict_main(["--model", str(run), "--out", str(tmp_path / "x"), "--split", "validation", "--seed", "42"]) == 2
    assert "--seed 42 differs from the run's own 7" in capsys.readouterr().err
    save_tiny(tmp_path / "m", "unet")
    assert predict_main(["--model", str(tmp_path / "m"), "--out", str(tmp_path / "y"), "--split", "validation"]) == 2
    assert "has no split.json" in capsys.readouterr().err and not (tmp_path / "y").exists()
    assert predict_main(["--model", str(tmp_path / "m"), "--out", str(tmp_path / "z"), "--split", "validation",
                         "--seed", "7", "--val-fraction", "0.3", "--overlays", "0"]) == 0
    assert json.loads((tmp_path / "z" / "summary.json").read_text())["tiles"] == 113


def test_multiscale_tta_averages_the_scales_probabilities(tmp_path, sample_arrays):
    """Each scale: the tile resized by PIL (as the processor would), the model's probabilities brought back to
    the tile's size, then averaged with the other scales'."""
    import torch.nn.functional as F
    from PIL import Image

    from tests.models.test_models import normalize

    model = save_tiny(tmp_path, "unet")
    images = sample_arrays.test_images[:2]
    per_scale = []
    for s in (0.75, 1.25):
        size = (round(128 * s), round(64 * s))
        resized = np.stack([np.asarray(Image.fromarray(t).resize(size, Image.BILINEAR)) for t in images])
        with torch.no_grad():
            logits = model(normalize(resized)).logits
        logits = F.interpolate(logits, size=(64, 128), mode="bilinear", align_corners=False)
        per_scale.append(logits.softmax(1))
    torch.testing.assert_close(predict_probs(model, images, "none", scales=(0.75, 1.25)), sum(per_scale) / 2)
    with pytest.raises(PredictError, match="TTA scales"):
        predict_probs(model, images, "none", scales=(0.1,))


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_class_ids_are_numpys_argmax_over_the_class_axis_ties_included(memory_format):
    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 3, (3, 5, 7, 9), generator=gen).float()  # few values: many ties
    scores = scores.contiguous(memory_format=memory_format)
    got = class_ids(scores)
    assert got.shape == (3, 7, 9) and scores.is_contiguous(memory_format=memory_format)  # input left as it was
    np.testing.assert_array_equal(got.numpy(), np.argmax(scores.numpy(), axis=1))  # numpy: first maximum wins
