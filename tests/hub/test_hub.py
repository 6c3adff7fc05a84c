"""Push to a local Hub-compatible server, then download and run the model in fresh processes."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import ModelCard
from transformers import AutoModelForSemanticSegmentation

from mars_segformer.hub import files_to_upload, render_card
from tests import forked
from tests.hub_server import start_server, validate_card_yaml
from tests.models.test_models import predict

#: one xdist worker runs this module (`--dist loadgroup`), so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group(__name__)

ROOT = Path(__file__).resolve().parents[2]
FRESH = ROOT / "tests" / "fresh_pipeline.py"
TOKEN = "hf_test_token"


@pytest.fixture(scope="module")
def hub():
    server, state, url = start_server()
    yield state, url
    server.shutdown()


def env_for(url, tmp, token=TOKEN):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_HUB_OFFLINE")}
    env.update(HF_ENDPOINT=url, HF_HOME=str(tmp / "hf_home"), HF_HUB_DISABLE_XET="1", OMP_NUM_THREADS="1")
    if token:
        env["HF_TOKEN"] = token
    return env


def train(out, model, extra=(), env=None):
    cmd = [sys.executable, str(ROOT / "train_hf.py"), "--output_dir", str(out), "--model", model, "--tiny",
           "--max_steps", "2", "--per_device_train_batch_size", "8", "--eval_strategy", "steps", "--eval_steps", "2",
           "--save_strategy", "steps", "--save_steps", "2", "--disable_tqdm", "true", "--logit_adjustment", "0", *extra]
    proc = forked.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    # the unet-attention run keeps the default tau search: its card's "logit adjustment (tau)" row is checked
    auto = {"unet-attention": ["--logit_adjustment", "auto"]}
    return {m: train(base / m, m, auto.get(m, ())) and base / m for m in ("segformer-b0", "unet-attention")}


def push(run_dir, repo_id, env, *extra):
    return forked.run([sys.executable, str(ROOT / "push_to_hub.py"), str(run_dir), "--repo_id", repo_id, *extra],
                      cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)


def fresh_pipeline(env, images_path, *models):
    proc = subprocess.run([sys.executable, str(FRESH), str(images_path), *models], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {k: np.array(v) for k, v in json.loads(proc.stdout.split("RESULT", 1)[1]).items()}


def snapshot(folder):
    return {p.relative_to(folder): (p.stat().st_mtime_ns, p.stat().st_size) for p in Path(folder).rglob("*")}


def test_card_metadata_parses_and_validates_shape(runs):
    card = render_card(runs["unet-attention"], "user/unet")
    parsed = ModelCard(str(card))
    assert parsed.data.library_name == "transformers" and parsed.data.pipeline_tag == "image-segmentation"
    assert parsed.data.license == "apache-2.0" and "mars" in parsed.data.tags
    m = json.loads((runs["unet-attention"] / "metrics.json").read_text())
    assert parsed.data.eval_results[0].metric_value == round(m["validation"]["task_mean_iou"], 4)
    text = str(card)
    for needle in ("big rock", "AI4MARS", "trust_remote_code=True", "confusion_matrix.png", "Intended use",
                   "| learning rate | 0.0006 |", "| LR schedule | polynomial |"):
        assert needle in text, needle
    # readable values: epochs to 2 decimals, class weights to 3 significant digits
    epochs = re.search(r"\| epochs run \| ([^|]+) \|", text).group(1).strip()
    assert epochs == f"{m['epochs_run']:.2f}"
    weights = re.search(r"\| class weights \| ([^|]+) \|", text).group(1).strip().split(", ")
    assert [float(w) for w in weights] == pytest.approx(m["class_weights"], rel=5e-3)
    assert all(len(w.replace(".", "").lstrip("0")) <= 3 for w in weights)
    # the recipe the run trained with, as its metrics.json records it (the defaults average and resample)
    for row, key in (("loss", "loss"), ("weight averaging", "weight_averaging"),
                     ("repeat-factor sampling threshold", "repeat_factor_threshold"),
                     (r"logit adjustment \(tau\)", "logit_adjustment_tau"), ("training precision", "training_precision")):
        assert re.search(rf"\| {row} \| ([^|]+) \|", text).group(1).strip() == str(m[key]), row
    # the default's shifted frame reads (every eligible read), with the number of frames metrics.json counted
    reads = re.search(r"\| shifted frame reads \(frame_shift, frame_zoom\) \| ([^|]+) \|", text).group(1).strip()
    assert m["frame_shift"]["frames"] > 0
    assert reads == f"{m['frame_shift']['frames']} complete training frames, 100% of their tiles' reads moved"
    # the metadata passes the YAML check the Hub runs on a push (the test server's, built on huggingface_hub)
    assert validate_card_yaml(text) == []
    broken = text.replace("metrics:\n    - name:", "metrics:\n    - nom:", 1).replace("type: mean_iou\n      value:", "value:", 1)
    assert broken != text and validate_card_yaml(broken)
    assert validate_card_yaml("no front matter") == ["no YAML front matter"]
    assert "trust_remote_code" not in str(render_card(runs["segformer-b0"], "user/seg")).split("## Use it")[1].split("```\n")[1]


def test_dry_run_uploads_nothing(hub, runs, tmp_path):
    state, url = hub
    before = len(state.requests)
    proc = push(runs["segformer-b0"], "user/dry", env_for(url, tmp_path), "--dry_run")
    assert proc.returncode == 0, proc.stderr
    assert "would upload to user/dry" in proc.stdout and "model.safetensors" in proc.stdout
    assert "model-index" in proc.stdout
    assert len(state.requests) == before and "user/dry" not in state.repos


@pytest.mark.parametrize("model,remote", [("segformer-b0", ""), ("unet-attention", ":remote")])
def test_push_then_fresh_cache_pipeline(hub, runs, tmp_path, sample_arrays, model, remote):
    state, url = hub
    repo = f"user/{model}"
    env = env_for(url, tmp_path)
    proc = push(runs[model], repo, env, "--commit_message", "first")
    assert proc.returncode == 0, proc.stderr[-2000:]
    commits = state.repos[repo]["branches"]["main"]
    assert len(commits) == 2 and commits[-1]["message"] == "first"  # one commit per push
    files = set(commits[-1]["files"])
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "README.md", "metrics.json"} <= files
    assert any(f.startswith("modeling_") for f in files) == bool(remote)
    images = sample_arrays.test_images[:2]
    np.save(tmp_path / "img.npy", images)
    got = fresh_pipeline(env, tmp_path / "img.npy", repo + remote)[repo + remote]
    expected = predict(AutoModelForSemanticSegmentation.from_pretrained(runs[model]).eval(), images)
    np.testing.assert_array_equal(got, expected)


def test_second_push_new_commit_first_still_loads(hub, runs, tmp_path, sample_arrays):
    state, url = hub
    repo = "user/versions"
    env = env_for(url, tmp_path)
    assert push(runs["segformer-b0"], repo, env).returncode == 0
    first = state.repos[repo]["branches"]["main"][-1]["oid"]
    assert push(runs["unet-attention"], repo, env, "--commit_message", "second").returncode == 0
    assert state.repos[repo]["branches"]["main"][-1]["oid"] != first
    np.save(tmp_path / "img.npy", sample_arrays.test_images[:1])
    got = fresh_pipeline(env, tmp_path / "img.npy", f"{repo}@{first}", f"{repo}:remote")
    seg = AutoModelForSemanticSegmentation.from_pretrained(runs["segformer-b0"]).eval()
    np.testing.assert_array_equal(got[f"{repo}@{first}"], predict(seg, sample_arrays.test_images[:1]))


def test_revision_branch_and_private(hub, runs, tmp_path):
    state, url = hub
    proc = push(runs["segformer-b0"], "user/branchy", env_for(url, tmp_path), "--revision", "exp/1", "--private")
    assert proc.returncode == 0, proc.stderr[-2000:]
    repo = state.repos["user/branchy"]
    assert repo["private"] and "README.md" in repo["branches"]["exp/1"][-1]["files"]
    assert "README.md" not in repo["branches"]["main"][-1]["files"]


def test_refused_commit_leaves_repo_and_folder_unchanged(hub, runs, tmp_path):
    state, url = hub
    env = env_for(url, tmp_path)
    assert push(runs["segformer-b0"], "user/refused", env).returncode == 0
    commits_before = list(state.repos["user/refused"]["branches"]["main"])
    # another run, so the commit changes files (an unchanged folder makes no commit at all)
    local_before = snapshot(runs["unet-attention"])
    state.fail_next_commit = True
    proc = push(runs["unet-attention"], "user/refused", env)
    assert proc.returncode == 2
    assert "nothing was committed" in proc.stderr and "500" in proc.stderr
    assert state.repos["user/refused"]["branches"]["main"] == commits_before
    assert snapshot(runs["unet-attention"]) == local_before


def test_pushing_an_unchanged_run_says_nothing_changed(hub, runs, tmp_path):
    state, url = hub
    env = env_for(url, tmp_path)
    first = push(runs["segformer-b0"], "user/same", env)
    assert first.returncode == 0 and "pushed" in first.stdout
    commits = list(state.repos["user/same"]["branches"]["main"])
    again = push(runs["segformer-b0"], "user/same", env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "nothing changed" in again.stdout and commits[-1]["oid"] in again.stdout and "pushed" not in again.stdout
    assert state.repos["user/same"]["branches"]["main"] == commits  # no new commit


def test_missing_token(hub, runs, tmp_path):
    state, url = hub
    proc = push(runs["segformer-b0"], "user/notoken", env_for(url, tmp_path, token=None))
    assert proc.returncode == 2 and "no Hugging Face token" in proc.stderr
    assert "user/notoken" not in state.repos


def test_bad_folders(tmp_path, runs):
    from mars_segformer.hub import HubPushError

    with pytest.raises(HubPushError, match="no such folder"):
        files_to_upload(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(HubPushError, match="not a finished run: missing model.safetensors"):
        files_to_upload(tmp_path / "half")


def test_training_push_gives_same_content(hub, tmp_path):
    state, url = hub
    env = env_for(url, tmp_path)
    out = tmp_path / "pushed_run"
    train(out, "unet", ["--push_to_hub", "true", "--hub_model_id", "user/from-training", "--seed", "7"], env=env)
    assert push(out, "user/from-script", env).returncode == 0
    a = state.repos["user/from-training"]["branches"]["main"][-1]["files"]
    b = state.repos["user/from-script"]["branches"]["main"][-1]["files"]
    assert set(a) == set(b)
    for f in a:
        if f != "README.md":
            assert a[f] == b[f], f
    assert a["README.md"].replace(b"from-training", b"X") == b["README.md"].replace(b"from-script", b"X")
    assert len(state.repos["user/from-training"]["branches"]["main"]) == 2  # one commit, no checkpoint pushes


def test_predict_cli_takes_a_hub_repo_id(hub, runs, tmp_path, sample_arrays):
    state, url = hub
    env = env_for(url, tmp_path)
    assert push(runs["unet-attention"], "user/for-predict", env).returncode == 0
    out = tmp_path / "pred"
    proc = subprocess.run([sys.executable, "-m", "mars_segformer.predict", "--model", "user/for-predict", "--out",
                           str(out), "--overlays", "0"], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    local = AutoModelForSemanticSegmentation.from_pretrained(runs["unet-attention"]).eval()
    np.testing.assert_array_equal(np.load(out / "predictions.npz")["masks"], predict(local, sample_arrays.test_images))


def test_the_card_of_a_run_before_frame_read_p_says_half_the_reads_moved():
    # metrics.json of a release before --frame_read_p records no "p"; that release moved half of the reads
    from mars_segformer.hub.card import _frame_reads

    assert _frame_reads({"frames": 3, "seam_median": 1.2}) == "3 complete training frames, 50% of their tiles' reads moved"
    assert _frame_reads({"frames": 3, "seam_median": 1.2, "p": 1.0, "scale": [2 / 3, 1.5]}) == (
        "3 complete training frames, 100% of their tiles' reads moved, windows 0.67-1.50x the tile's size")
    assert _frame_reads({"frames": 3, "seam_median": 1.2, "p": 1.0, "scale": [2 / 3, 1.5], "zoom_until": 0.7}) == (
        "3 complete training frames, 100% of their tiles' reads moved, windows 0.67-1.50x the tile's size, zoomed "
        "for the first 70% of the steps, then shifted only")
    assert _frame_reads(None) == "off"


def test_the_card_names_the_teachers_of_a_distilled_run():
    from mars_segformer.hub.card import _distillation

    assert _distillation(None) == "none"
    assert _distillation({"teachers": ["/runs/a_s0", "/runs/b_s0/checkpoint-9"], "weight": 0.5}) == (
        "mean class probabilities of 2 teacher run(s) (a_s0, checkpoint-9), weight 0.5")
    assert _distillation({"teachers": ["/runs/a_s0"], "weight": 1, "view": "frame"}) == (
        "mean class probabilities of 1 teacher run(s) (a_s0), each complete frame seen whole, weight 1")
    assert _distillation({"teachers": [], "self_from": 0.5, "refreshes": 10, "weight": 1, "view": "frame"}) == (
        "the run's own averaged weights from 50% of the steps (10 refreshes), each complete frame seen whole, weight 1")


@pytest.mark.parametrize("name, phrase", [("upernet-r18", "on a ResNet backbone"),
                                          ("upernet-convnext-atto-s2", "on a ConvNeXt (stem stride 2) backbone")])
def test_the_card_names_upernets_backbone(name, phrase):
    from mars_segformer import create_model
    from mars_segformer.hub.card import _architecture

    config = create_model(name, tiny=True).config.to_dict()
    assert _architecture(config) == f"UperNet (pyramid pooling + FPN decoder) {phrase}"
    assert _architecture({"model_type": "segformer"}) == "SegFormer (Mix Transformer encoder, all-MLP decoder)"
