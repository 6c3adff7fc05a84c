"""bench/model_zoo.py: a subset of presets never rewrites the all-preset page or file."""

import pytest

import bench.model_zoo as zoo
from mars_segformer import PRESETS


@pytest.fixture
def fake_zoo(tmp_path, monkeypatch):
    saved = {}
    (tmp_path / "docs").mkdir()
    monkeypatch.setattr(zoo, "ROOT", tmp_path)
    monkeypatch.setattr(zoo, "measure", lambda name, steps, batch: (2_000_000, 10.0 + len(name)))
    monkeypatch.setattr(zoo, "save", lambda name, result: saved.setdefault(name, result))
    return tmp_path, saved


def test_a_subset_is_saved_under_its_own_name_and_leaves_the_page(fake_zoo):
    root, saved = fake_zoo
    zoo.main(["--models", "upernet-r18", "segformer-b0"])
    assert list(saved) == ["model_zoo_subset"]
    assert saved["model_zoo_subset"]["rows"]["upernet-r18"] == {"params_M": 2.0, "train_images_per_s": 21.0}
    assert not (root / "docs" / "model_zoo.md").exists()


def test_every_preset_writes_the_page_with_one_row_each(fake_zoo):
    root, saved = fake_zoo
    zoo.main(["--steps", "1"])
    assert list(saved) == ["model_zoo"]
    page = (root / "docs" / "model_zoo.md").read_text()
    assert "`python bench/model_zoo.py --steps 1`" in page
    for name in PRESETS:
        assert f"| `{name}` | 2.00 | {10.0 + len(name):.1f} |" in page


@pytest.mark.parametrize("argv, needle", [
    (["--models", "nope"], "--models nope: not a preset"),
    (["--models", "upernet-r18", "--name", "model_zoo"], "--name model_zoo: that file holds every preset"),
    (["--steps", "0"], "--steps 0 --batch 32: expected positive integers"),
])
def test_bad_flags_are_one_line_and_exit_2(fake_zoo, capsys, argv, needle):
    _, saved = fake_zoo
    with pytest.raises(SystemExit) as exc:
        zoo.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
    assert saved == {}
