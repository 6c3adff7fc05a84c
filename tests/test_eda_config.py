import json
from pathlib import Path

import numpy as np

from mars_segformer.eda import class_statistics
from mars_segformer.eda import main as eda_main
from mars_segformer.training import parse_args


def test_eda_writes_table_figures_and_outliers(tmp_path, capsys, sample_arrays):
    assert eda_main(["--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "big_rock" in printed and f"{len(sample_arrays)} labelled tiles" in printed
    for name in ("class_shares.png", "samples.png"):
        assert (tmp_path / name).stat().st_size > 10_000  # a real figure, not an empty canvas
    stats = json.loads((tmp_path / "eda.json").read_text())
    counts = np.bincount(sample_arrays.train_masks.ravel(), minlength=5)
    np.testing.assert_allclose(stats["pixel_share"], counts / counts.sum())
    assert stats["tiles_with_class"][4] == int((sample_arrays.train_masks == 4).any(axis=(1, 2)).sum())


def test_eda_bad_file(tmp_path, capsys):
    assert eda_main([str(tmp_path / "missing.npz"), "--out", str(tmp_path / "o")]) == 2
    assert "missing.npz: no such file" in capsys.readouterr().err


def test_class_statistics_small():
    masks = np.array([[[0, 1], [4, 4]], [[1, 1], [1, 1]]], np.uint8)
    s = class_statistics(masks)
    assert s["pixel_share"][1] == 5 / 8 and s["tiles_with_class"] == [1, 2, 0, 0, 1]


def test_yaml_config_with_flag_override(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: unet-se\nlearning_rate: 0.001\naugmentations: [hflip, blur]\noutput_dir: /tmp/x\n")
    model, data, loss, args = parse_args([str(cfg), "--learning_rate", "0.002"])
    assert model.model == "unet-se" and data.augmentations == "hflip,blur"
    assert args.learning_rate == 0.002 and args.weight_decay == 1e-3 and args.max_grad_norm == 1.0
    js = tmp_path / "c.json"
    js.write_text(json.dumps({"model": "deeplabv3plus", "loss": "focal:1,dice:0.5", "output_dir": "/tmp/y"}))
    model, _, loss, _ = parse_args([str(js)])
    assert model.model == "deeplabv3plus" and loss.loss == "focal:1,dice:0.5"


def test_reference_yaml_matches_the_reference_data_config():
    from mars_segformer.data import DataConfig

    _, data_args, _, _ = parse_args([str(Path(__file__).parents[1] / "configs" / "reference.yaml")])
    ref = DataConfig.reference()
    assert data_args.augmentations.split(",") == list(ref.augmentations)
    assert (data_args.cutmix_p, data_args.oversample_big_rock) == (ref.cutmix_p, ref.oversample_big_rock)
