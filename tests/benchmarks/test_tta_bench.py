"""bench/tta.py's validation split (shared by the other bench scripts that score a run): a folder that is not a
run, or a run whose data file is gone, ends in exit 2 and one line naming it, before anything is predicted."""

import json

import pytest

from bench.tta import validation_split


def test_a_folder_without_its_split_exits_2_with_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        validation_split(tmp_path, None, None)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {tmp_path}: ") and "split.json" in err


def test_a_run_whose_data_is_gone_exits_2_with_one_line(tmp_path, capsys):
    (tmp_path / "split.json").write_text(json.dumps({"seed": 0, "val_fraction": 0.2, "drop_outliers": True,
                                                     "outlier_min_count": 20, "validation_tiles": 5,
                                                     "data": str(tmp_path / "gone.npz")}))
    with pytest.raises(SystemExit) as exit_:
        validation_split(tmp_path, None, None)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {tmp_path}: ") and "gone.npz" in err
