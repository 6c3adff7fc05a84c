"""Self-supervised pretraining (``python -m mars_segformer.pretrain``): the images it may use, resume,
the checkpoint it writes as a ``--model`` start (published on the local Hub server and fine-tuned by
repo id), its card, and one-line errors that write nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file

from mars_segformer.data import MarsArrays, MarsDataError, arrays_from_course_layout, load_arrays
from mars_segformer.data.dataset import DataConfig
from mars_segformer.data.split import train_val_split
from mars_segformer.data.views import pretraining_images
from mars_segformer.pretrain import main
from tests.conftest import make_course_arrays
from tests.hub.test_hub import env_for, push
from tests.hub_server import validate_card_yaml
from tests.models.test_pretrained import fine_tune, hub  # noqa: F401  (hub is a fixture)

pytestmark = pytest.mark.xdist_group(__name__)

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--tiny", "--batch_size", "8", "--queue_size", "64", "--logging_steps", "2", "--torch_threads", "1"]


def stamped_arrays(n=60, m=30, frames=12) -> MarsArrays:
    """Tiles whose first pixel row holds their own number (train k -> k, test k -> 1000 + k, in 16 bits
    over two pixels), and frame ids shared between the labelled and the unlabelled tiles."""
    train, test = make_course_arrays(n=n, m=m, seed=3)
    for k in range(n):
        train[k, 0, 0, :2] = (k // 256, k % 256)
    for k in range(m):
        test[k, 0, :2] = ((1000 + k) // 256, (1000 + k) % 256)
    rng = np.random.default_rng(0)
    return arrays_from_course_layout(train, test, source="stamped", training_frame_ids=rng.integers(0, frames, n),
                                     test_frame_ids=rng.integers(0, frames, m))


def stamp(images: np.ndarray) -> list[int]:
    return [int(t[0, 0]) * 256 + int(t[0, 1]) for t in images]


def test_pretraining_images_are_every_tile_outside_the_validation_frames():
    arrays = stamped_arrays()
    split = DataConfig(val_fraction=0.25, seed=5, drop_outliers=False)
    images, record = pretraining_images(arrays, split)
    _, va = train_val_split(arrays.train_masks, arrays.train_frame_ids, 0.25, 5)
    val_frames = set(arrays.train_frame_ids[va].tolist())
    expected = sorted([k for k in range(len(arrays.train_images)) if arrays.train_frame_ids[k] not in val_frames]
                      + [1000 + k for k in range(len(arrays.test_images)) if arrays.test_frame_ids[k] not in val_frames])
    assert sorted(stamp(images)) == expected
    assert record["validation_tiles_excluded"] == len(va) > 0
    assert record["unlabelled_tiles_excluded"] == sum(f in val_frames for f in arrays.test_frame_ids.tolist()) > 0


def test_a_file_of_unlabelled_tiles_alone_pretrains_on_every_tile(tmp_path):
    """An .npz holding only ``test_set`` (no labels at all): pretraining reads every tile of it, in memory,
    while training still refuses the file (it has nothing to learn from)."""
    arrays = stamped_arrays(n=2, m=30)
    path = tmp_path / "unlabelled.npz"
    np.savez(path, test_set=arrays.test_images, test_frame_ids=arrays.test_frame_ids)
    loaded = load_arrays(path, images_only=True)
    images, record = pretraining_images(loaded, DataConfig(val_fraction=0.25, seed=5))
    assert sorted(stamp(images)) == [1000 + k for k in range(30)]
    assert record["labelled_tiles"] == 0 and record["unlabelled_tiles"] == 30
    assert run_pretrain(tmp_path / "out", "--max_steps", "2", "--save_steps", "2", data=path) == 0
    used = json.loads((tmp_path / "out" / "pretrain.json").read_text())["data"]
    assert used["labelled_tiles"] == 0 and used["unlabelled_tiles"] == 30
    with pytest.raises(MarsDataError, match="missing key 'training_set'"):
        load_arrays(path)
    bad = tmp_path / "masks_only.npz"
    np.savez(bad, test_set=np.zeros((3, 2, 64, 128), np.uint8))
    with pytest.raises(MarsDataError, match=r"key 'test_set' has shape \(3, 2, 64, 128\): it holds masks; a test set is images only"):
        load_arrays(bad, images_only=True)


def run_pretrain(out, *extra, data=None):
    return main(["--output_dir", str(out), *TINY, *(["--data", str(data)] if data else []), *extra])


def test_resumed_run_equals_the_uninterrupted_one(tmp_path, monkeypatch):
    """A real SIGTERM during step 3: the step finishes, the state is saved, exit 143; the same command then
    finishes the run with exactly the weights and losses of an uninterrupted one."""
    import os
    import signal

    from mars_segformer.training import pretraining

    assert run_pretrain(tmp_path / "whole", "--max_steps", "6", "--save_steps", "100") == 0
    real_step, calls = pretraining.train_step, []

    def step_with_a_signal(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_step(*args, **kwargs)

    monkeypatch.setattr(pretraining, "train_step", step_with_a_signal)
    assert run_pretrain(tmp_path / "cut", "--max_steps", "6", "--save_steps", "100") == 143
    assert len(calls) == 3
    assert (tmp_path / "cut" / "checkpoint" / "state.pt").is_file() and not (tmp_path / "cut" / "config.json").exists()
    monkeypatch.undo()
    assert run_pretrain(tmp_path / "cut", "--max_steps", "6", "--save_steps", "100") == 0
    a, b = load_file(str(tmp_path / "whole" / "model.safetensors")), load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    la = json.loads((tmp_path / "whole" / "pretrain.json").read_text())["log"]
    lb = json.loads((tmp_path / "cut" / "pretrain.json").read_text())["log"]
    assert [r["loss"] for r in la] == [r["loss"] for r in lb]
    assert not (tmp_path / "cut" / "checkpoint").exists()


def test_checkpoint_published_and_fine_tuned_by_repo_id(hub, tmp_path):  # noqa: F811
    """The pretrained folder goes to the local Hub with push_to_hub.py (its own card), and train_hf.py
    --model REPO in a fresh cache starts a native UperNet whose backbone is exactly the pretrained one."""
    state, url = hub
    out = tmp_path / "densecl"
    assert run_pretrain(out, "--max_steps", "4") == 0
    record = json.loads((out / "pretrain.json").read_text())
    assert record["steps"] == 4 and len(record["log"]) == 2 and (out / "pretrain_loss.png").stat().st_size > 1000
    env = env_for(url, tmp_path)
    proc = push(out, "someone/mars-densecl", env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    commits = state.repos["someone/mars-densecl"]["branches"]["main"]
    assert set(commits[-1]["files"]) - {".gitattributes"} == {"config.json", "model.safetensors", "preprocessor_config.json", "pretrain.json",
                                         "pretrain_loss.png", "README.md"}
    assert "self-supervised backbone" in commits[-1]["message"]
    run = tmp_path / "run"
    tuned_proc = fine_tune(run, "someone/mars-densecl", env)
    assert tuned_proc.returncode == 0, tuned_proc.stderr[-3000:]
    assert "model: started from hub someone/mars-densecl (the resnet backbone in a new UperNet" in tuned_proc.stdout
    from transformers import AutoModelForSemanticSegmentation

    tuned = AutoModelForSemanticSegmentation.from_pretrained(run)
    pretrained = load_file(str(out / "model.safetensors"))
    got = {k.removeprefix("backbone."): v for k, v in tuned.named_parameters() if k.startswith("backbone.")}
    assert got.keys() == {k for k in pretrained if "running_" not in k and "num_batches" not in k}
    for k, v in got.items():
        torch.testing.assert_close(v.detach(), pretrained[k], rtol=0, atol=1e-9, msg=k)
    m = json.loads((run / "metrics.json").read_text())
    assert m["base_model"]["tensors_new"] == sum(1 for k in tuned.state_dict() if k.startswith("decode_head."))
    np.testing.assert_allclose(m["base_model"]["backbone"]["image_mean"], [0.235] * 3)


def test_backbone_card(tmp_path):
    from mars_segformer.hub import files_to_upload, render_backbone_card

    out = tmp_path / "densecl"
    assert run_pretrain(out, "--max_steps", "2", "--seed", "7") == 0
    card = render_backbone_card(out, "user/densecl")
    assert validate_card_yaml(str(card)) == []
    parsed = ModelCard(str(card))
    assert parsed.data.pipeline_tag == "image-feature-extraction" and "self-supervised" in parsed.data.tags
    record = json.loads((out / "pretrain.json").read_text())
    text = str(card)
    assert "--seed 7" in text and f"{record['data']['validation_tiles_excluded']} validation tiles" in text
    assert "python train_hf.py --model user/densecl" in text
    assert sorted(f.name for f in files_to_upload(out)) == sorted(
        ["config.json", "model.safetensors", "preprocessor_config.json", "pretrain.json", "pretrain_loss.png"])


def empty_file(tmp_path) -> Path:
    """A course-layout file with no tiles at all."""
    path = tmp_path / "empty.npz"
    np.savez(path, training_set=np.zeros((0, 2, 64, 128), np.uint8), test_set=np.zeros((0, 64, 128), np.uint8))
    return path


@pytest.mark.parametrize("case", ["no images", "bad value", "foreign folder", "other settings"])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, case):
    out = tmp_path / "out"
    if case == "no images":
        code, expect = run_pretrain(out, data=empty_file(tmp_path)), "empty.npz: key 'training_set' is empty"
    elif case == "bad value":
        code, expect = run_pretrain(out, "--local_weight", "1.5"), "--local_weight 1.5: expected in [0, 1]"
    elif case == "foreign folder":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
        code, expect = run_pretrain(out), "not a pretraining run's"
    else:
        assert run_pretrain(out, "--max_steps", "4", "--save_steps", "2", "--logging_steps", "2") is not None
        # an unfinished run (its state kept), continued with other settings
        (out / "config.json").unlink()
        (out / "pretrain.json").unlink()
        out_state = out / "checkpoint"
        out_state.mkdir(exist_ok=True)
        torch.save({"config": {"model": "upernet-r18"}}, out_state / "state.pt")
        capsys.readouterr()
        code, expect = run_pretrain(out, "--max_steps", "8"), "made with other settings"
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and expect in err and len(err.splitlines()) == 1, err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    if case in ("no images", "bad value"):
        assert not out.exists()


def test_cli_subcommand_and_missing_flag():
    proc = subprocess.run([sys.executable, "-m", "mars_segformer", "pretrain", "--max_steps", "3"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--output_dir" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
