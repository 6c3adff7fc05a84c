"""The dataset on the Hub: publish a tile file, load it in a fresh cache, train on it and predict from it."""

import hashlib
import json
import sys
from pathlib import Path

import pytest

from tests import forked
from tests.hub.test_hub import env_for
from tests.hub_server import start_server

#: one xdist worker runs this module (`--dist loadgroup`), so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group(__name__)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hub():
    server, state, url = start_server()
    yield state, url
    server.shutdown()


def run(args, env, timeout=300):
    return forked.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def fingerprint(images, masks, frames):
    return sorted(hashlib.sha1(i.tobytes() + m.tobytes() + str(f).encode()).hexdigest()
                  for i, m, f in zip(images, masks, frames, strict=True))


@pytest.fixture(scope="module")
def published(hub, tmp_path_factory):
    state, url = hub
    tmp = tmp_path_factory.mktemp("pub")
    proc = run([str(ROOT / "push_dataset_to_hub.py"), "--repo_id", "user/mars-tiles"], env_for(url, tmp))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "train 317 tiles, validation 82 tiles, test 76 tiles" in proc.stdout
    return url


def test_published_dataset_round_trips_with_its_card(hub, published, tmp_path, sample_arrays):
    state, url = hub
    files = state.repos["datasets/user/mars-tiles"]["branches"]["main"][-1]["files"]
    assert {"data/train-00000-of-00001.parquet", "data/validation-00000-of-00001.parquet",
            "data/test-00000-of-00001.parquet", "README.md"} <= set(files)
    card = files["README.md"].decode()
    for needle in ("task_categories:", "image-segmentation", "big rock", "AI4MARS", "by rover frame", "configs:"):
        assert needle in card, needle
    # load in a fresh cache, in a fresh process, through datasets.load_dataset
    code = ("import json, numpy as np; from mars_segformer.data import load_arrays; a = load_arrays('user/mars-tiles'); "
            "np.savez('%s', i=a.train_images, m=a.train_masks, f=a.train_frame_ids, t=a.test_images, tf=a.test_frame_ids)"
            % (tmp_path / "got.npz"))
    proc = run(["-c", code], env_for(url, tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    import numpy as np

    got = np.load(tmp_path / "got.npz")
    a = sample_arrays
    assert fingerprint(got["i"], got["m"], got["f"]) == fingerprint(a.train_images, a.train_masks, a.train_frame_ids)
    assert sorted(map(bytes, got["t"])) == sorted(map(bytes, a.test_images))


def test_train_and_predict_from_the_hub_dataset(published, tmp_path):
    env = env_for(published, tmp_path)
    out = tmp_path / "run"
    proc = run([str(ROOT / "train_hf.py"), "--output_dir", str(out), "--data", "user/mars-tiles", "--model", "unet",
                "--tiny", "--max_steps", "2", "--per_device_train_batch_size", "8", "--eval_strategy", "no",
                "--save_strategy", "no", "--load_best_model_at_end", "false", "--seed", "42", "--logit_adjustment", "0"],
               env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    # the published split was made with seed 42, so training with seed 42 holds out the same 82 tiles
    assert m["data"] == "user/mars-tiles" and m["train_tiles"] == 317 and m["validation_tiles"] == 82
    proc = run(["-m", "mars_segformer.predict", "--model", str(out), "--data", "user/mars-tiles", "--out",
                str(tmp_path / "preds"), "--overlays", "0"], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "preds" / "summary.json").read_text())["tiles"] == 76


@pytest.mark.parametrize("data,extra,needle", [
    ("user/no-such-dataset", (), "--data user/no-such-dataset: no such Hub dataset"),
    ("user/mars-tiles", ("--data_revision", "nope"), "--data_revision 'nope': no such branch"),
    ("user/other-columns", (), "lacks column(s) ['mask', 'frame_id']"),
])
def test_bad_hub_datasets(hub, published, tmp_path, data, extra, needle):
    state, url = hub
    env = env_for(url, tmp_path)
    if data == "user/other-columns":
        code = ("from datasets import Dataset, DatasetDict; d = Dataset.from_dict({'image': ['a'], 'text': ['b']}); "
                "DatasetDict(train=d, validation=d).push_to_hub('user/other-columns')")
        assert run(["-c", code], env).returncode == 0
    out = tmp_path / "run"
    proc = run([str(ROOT / "train_hf.py"), "--output_dir", str(out), "--data", data, *extra, "--model", "unet",
                "--tiny", "--max_steps", "1"], env)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
