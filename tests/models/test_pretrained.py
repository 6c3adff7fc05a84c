"""Fine-tuning from any checkpoint: local folders and Hub repos (the local Hub-compatible server), each
kind of starting point, tensor by tensor; bad sources are one clear error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import HfApi
from safetensors.torch import load_file, save_file
from transformers import (
    AutoModelForSemanticSegmentation,
    BertConfig,
    BertModel,
    SegformerConfig,
    SegformerForImageClassification,
    SegformerForSemanticSegmentation,
    SegformerModel,
)

from mars_segformer import create_model, make_image_processor
from mars_segformer.models.pretrained import (
    StartError,
    adapt_input_conv,
    load_encoder_weights,
    load_pretrained,
    source_kind,
    timm_encoder,
)
from mars_segformer.models.registry import TINY_OVERRIDES
from mars_segformer.training import main as train_main
from tests import forked
from tests.hub.test_hub import TOKEN, env_for
from tests.hub_server import start_server
from tests.models.test_models import predict

#: one xdist worker runs this module (`--dist loadgroup`), so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group(__name__)

ROOT = Path(__file__).resolve().parents[2]
FRESH = ROOT / "tests" / "fresh_pipeline.py"
MIT = {k: v for k, v in TINY_OVERRIDES["segformer-b0"].items() if k != "decoder_hidden_size"}


def params(model) -> dict[str, torch.Tensor]:
    """Parameters only (BatchNorm running statistics move in any forward pass in train mode)."""
    return {k: v.detach().clone() for k, v in model.named_parameters()}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """One tiny checkpoint of each kind a user may start from, saved as folders."""
    base = tmp_path_factory.mktemp("ckpts")
    torch.manual_seed(0)
    made = {
        # nvidia/mit-b0 layout: an ImageNet classifier over the MiT encoder
        "mit_classifier": SegformerForImageClassification(SegformerConfig(**MIT, num_labels=1000)),
        "mit_encoder": SegformerModel(SegformerConfig(**MIT)),
        # an ADE20k-like segmenter with 150 labels, made for 1-channel input
        "ade_gray": SegformerForSemanticSegmentation(SegformerConfig(**TINY_OVERRIDES["segformer-b0"], num_labels=150,
                                                                     num_channels=1)),
        "project_deeplab": create_model("deeplabv3plus", tiny=True),
        "project_upernet": create_model("upernet-r18", tiny=True),
    }
    for name, model in made.items():
        model.save_pretrained(base / name)
        if name.startswith("project"):
            make_image_processor().save_pretrained(base / name)
    BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=37)).save_pretrained(base / "text_model")
    (base / "no_weights").mkdir()
    SegformerConfig(**MIT).save_pretrained(base / "no_weights")
    return base, made


@pytest.mark.parametrize("name,new_prefixes,adapted", [
    ("mit_classifier", ["decode_head."], []),
    ("mit_encoder", ["decode_head."], []),
    ("ade_gray", ["decode_head.classifier."], ["segformer.stages.0.patch_embeddings.proj.weight"]),
    ("project_deeplab", [], []),
    ("project_upernet", [], []),
])
def test_each_starting_point_loads_what_it_has(checkpoints, name, new_prefixes, adapted):
    base, made = checkpoints
    model, report = load_pretrained(str(base / name))
    assert model.config.id2label[4] == "big_rock" and model.config.num_labels == 5
    source = {k.removeprefix("segformer."): v for k, v in params(made[name]).items()}
    mine = params(model)
    for key, tensor in mine.items():
        is_new = any(key.startswith(p) for p in new_prefixes)
        if key in adapted:
            original = source[key.removeprefix("segformer.")]
            assert original.shape[1] == 1 and tensor.shape[1] == 3
            torch.testing.assert_close(tensor, original.repeat(1, 3, 1, 1) / 3)
        elif is_new:
            assert key in report.new, key
        else:  # from the checkpoint, unchanged
            torch.testing.assert_close(tensor, source[key.removeprefix("segformer.")], rtol=0, atol=0, msg=key)
    assert report.adapted == adapted
    assert report.loaded + len(report.new) == len(model.state_dict())
    assert bool(report.new) == bool(new_prefixes)


def test_adapted_first_layer_keeps_the_gray_response():
    w = torch.randn(4, 1, 3, 3)
    x = torch.randn(2, 1, 8, 8)
    same = torch.nn.functional.conv2d(x.repeat(1, 3, 1, 1), adapt_input_conv(w, 3))
    torch.testing.assert_close(same, torch.nn.functional.conv2d(x, w))
    w3 = torch.randn(4, 3, 3, 3)  # and the reverse: an RGB layer fed one gray channel
    torch.testing.assert_close(torch.nn.functional.conv2d(x, adapt_input_conv(w3, 1)),
                               torch.nn.functional.conv2d(x.repeat(1, 3, 1, 1), w3))


def test_source_rule(checkpoints, tmp_path, monkeypatch):
    base, _ = checkpoints
    monkeypatch.chdir(tmp_path)
    (tmp_path / "unet").mkdir()
    assert source_kind("unet") == "preset"  # the preset wins over a same-named folder...
    assert source_kind("./unet") == "folder"  # ...which is reached as ./unet
    assert source_kind(str(base / "mit_encoder")) == "folder"
    assert source_kind("nvidia/mit-b0") == "hub"
    with pytest.raises(StartError, match="not a preset"):
        source_kind("no such thing")


@pytest.mark.parametrize("name,needle", [
    ("text_model", "a 'bert' checkpoint is not a semantic-segmentation or SegFormer-family model"),
    ("no_weights", "the folder holds no weights"),
    ("missing_folder/", "not a preset"),
])
def test_bad_local_sources(checkpoints, tmp_path, capsys, name, needle):
    base, _ = checkpoints
    out = tmp_path / "run"
    code = train_main(["--output_dir", str(out), "--model", str(base / name), "--max_steps", "1"])
    assert code == 2 and needle in capsys.readouterr().err
    assert not out.exists()


def test_timm_encoder_weights_from_a_file(tmp_path):
    """--encoder_weights: timm weights (here a saved tiny timm model with a classifier) go into the custom
    architecture's encoder; the head is left out; the saved model reloads without the weights file."""
    import timm

    torch.manual_seed(1)
    donor = timm.create_model("test_resnet", pretrained=False, num_classes=10)
    save_file(donor.state_dict(), tmp_path / "donor.safetensors")
    model = create_model("deeplabv3plus", tiny=True)
    report = load_encoder_weights(model, str(tmp_path / "donor.safetensors"))
    enc = timm_encoder(model).state_dict()
    donor_sd = load_file(tmp_path / "donor.safetensors")
    shared = [k for k in enc if k in donor_sd]
    assert report.loaded == len(shared) > 10
    for k in shared:
        torch.testing.assert_close(enc[k], donor_sd[k], rtol=0, atol=0)
    model.save_pretrained(tmp_path / "saved")
    (tmp_path / "donor.safetensors").unlink()
    again = AutoModelForSemanticSegmentation.from_pretrained(tmp_path / "saved")
    torch.testing.assert_close(timm_encoder(again).state_dict()[shared[0]], donor_sd[shared[0]])
    with pytest.raises(StartError, match="has no timm encoder"):
        load_encoder_weights(create_model("unet", tiny=True), str(tmp_path / "saved" / "model.safetensors"))


def test_encoder_lr_scale_and_freezing(tmp_path):
    out = tmp_path / "run"
    code = train_main(["--output_dir", str(out), "--model", "upernet-r18", "--tiny", "--max_steps", "3",
                       "--per_device_train_batch_size", "8", "--eval_strategy", "no", "--save_strategy", "no",
                       "--load_best_model_at_end", "false", "--encoder_lr_scale", "0.1", "--freeze_encoder_steps", "2",
                       "--disable_tqdm", "true"])
    assert code == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["encoder_lr_scale"] == 0.1 and m["freeze_encoder_steps"] == 2
    assert train_main(["--output_dir", str(tmp_path / "x"), "--model", "unet", "--tiny", "--max_steps", "1",
                       "--encoder_lr_scale", "0.5"]) == 2


def test_encoder_lr_scale_splits_groups_and_freeze_holds_encoder():
    from transformers import TrainingArguments

    from mars_segformer.models.pretrained import encoder_parameters
    from mars_segformer.training.callbacks import FreezeEncoderCallback
    from mars_segformer.training.trainer import MarsTrainer

    model = create_model("upernet-r18", tiny=True)
    enc = encoder_parameters(model)
    args = TrainingArguments(output_dir="unused", learning_rate=1e-3, use_cpu=True, report_to="none")
    trainer = MarsTrainer(model=model, args=args, encoder_params=enc, encoder_lr_scale=0.1)
    opt = trainer.create_optimizer()
    enc_ids = {id(p) for p in enc}
    for g in opt.param_groups:
        kinds = {id(p) in enc_ids for p in g["params"]}
        assert len(kinds) == 1  # no group mixes encoder and decoder parameters
        assert g["lr"] == pytest.approx(1e-4 if kinds == {True} else 1e-3)
    assert sum(len(g["params"]) for g in opt.param_groups) == len([p for p in model.parameters() if p.requires_grad])
    cb = FreezeEncoderCallback(enc, steps=2)
    state = type("S", (), {"global_step": 0})()
    cb.on_train_begin(args, state, None)
    assert not any(p.requires_grad for p in enc)
    state.global_step = 2
    cb.on_step_end(args, state, None)
    assert all(p.requires_grad for p in enc)


# --- through the Hub ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hub():
    server, state, url = start_server()
    yield state, url
    server.shutdown()


def publish(url, folder, repo_id, branch=None):
    api = HfApi(endpoint=url, token=TOKEN)
    api.create_repo(repo_id, exist_ok=True)
    if branch:
        api.create_branch(repo_id, branch=branch, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, revision=branch)


def fine_tune(out, model, env, *extra):
    cmd = [sys.executable, str(ROOT / "train_hf.py"), "--output_dir", str(out), "--model", model, "--max_steps", "1",
           "--per_device_train_batch_size", "4", "--eval_strategy", "no", "--save_strategy", "no",
           "--load_best_model_at_end", "false", "--disable_tqdm", "true", "--learning_rate", "1e-12",
           "--lr_scheduler_type", "constant", "--weight_decay", "0",
           "--logit_adjustment", "0",  # the classifier bias stays as loaded: only training could move a tensor
           *extra]
    return forked.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def test_fine_tune_from_hub_repos(hub, checkpoints, tmp_path, sample_arrays):
    """Each kind of checkpoint published under a repo id, fine-tuned by repo id in a fresh cache (one step at
    lr 1e-12, so loaded tensors stay equal to the checkpoint's), then run in pipeline in a fresh process."""
    state, url = hub
    base, made = checkpoints
    env = env_for(url, tmp_path)
    publish(url, base / "mit_classifier", "nvidia-like/mit-tiny")
    publish(url, base / "ade_gray", "someone/seg-ade-gray", branch="v1")
    publish(url, base / "project_deeplab", "me/mars-deeplab")
    cases = [("nvidia-like/mit-tiny", (), ["decode_head."]),
             ("someone/seg-ade-gray", ("--model_revision", "v1"), ["decode_head.classifier.",
                                                                   "segformer.stages.0.patch_embeddings.proj"]),
             ("me/mars-deeplab", (), [])]
    folders = []
    for repo, extra, new_prefixes in cases:
        out = tmp_path / repo.replace("/", "__")
        proc = fine_tune(out, repo, env, *extra)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"model: started from hub {repo}" in proc.stdout
        m = json.loads((out / "metrics.json").read_text())
        assert m["base_model"]["source"] == repo and m["base_model"]["kind"] == "hub"
        tuned = params(AutoModelForSemanticSegmentation.from_pretrained(out))
        source = {k.removeprefix("segformer."): v for k, v in params(made[{
            "nvidia-like/mit-tiny": "mit_classifier", "someone/seg-ade-gray": "ade_gray",
            "me/mars-deeplab": "project_deeplab"}[repo]]).items()}
        for key, tensor in tuned.items():
            if any(key.startswith(p) for p in new_prefixes):
                continue
            torch.testing.assert_close(tensor, source[key.removeprefix("segformer.")], rtol=0, atol=1e-9, msg=key)
        # the model card names the starting checkpoint as the Hub expects
        from mars_segformer.hub import render_card

        assert render_card(out, "me/tuned").data.base_model == repo
        folders.append(str(out) + (":remote" if repo == "me/mars-deeplab" else ""))
    images = sample_arrays.test_images[:2]
    np.save(tmp_path / "images.npy", images)
    proc = subprocess.run([sys.executable, str(FRESH), str(tmp_path / "images.npy"), *folders], capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.split("RESULT", 1)[1])
    for folder in folders:
        expected = predict(AutoModelForSemanticSegmentation.from_pretrained(folder.removesuffix(":remote")).eval(), images)
        np.testing.assert_array_equal(np.array(got[folder]), expected)


@pytest.mark.parametrize("model,extra,needle", [
    ("nobody/not-there", (), "--model nobody/not-there: no such Hub repo"),
    ("me/upernet-pub", ("--model_revision", "no-such-branch"), "--model_revision 'no-such-branch': no such branch"),
    ("me/text-model", (), "a 'bert' checkpoint is not a semantic-segmentation"),
])
def test_bad_hub_sources(hub, checkpoints, tmp_path, model, extra, needle):
    state, url = hub
    base, _ = checkpoints
    publish(url, base / "project_upernet", "me/upernet-pub")
    publish(url, base / "text_model", "me/text-model")
    out = tmp_path / "run"
    proc = fine_tune(out, model, env_for(url, tmp_path), *extra)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_a_local_folder_never_calls_the_network(hub, checkpoints, tmp_path):
    state, url = hub
    base, _ = checkpoints
    before = len(state.requests)
    proc = fine_tune(tmp_path / "run", str(base / "project_upernet"), env_for(url, tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "model: started from folder" in proc.stdout
    assert state.requests[before:] == []


def test_encoder_weights_from_a_hub_repo(hub, tmp_path):
    """--encoder_weights owner/name downloads the repo's model.safetensors (timm's Hub layout)."""
    import timm

    state, url = hub
    torch.manual_seed(2)
    donor = tmp_path / "donor"
    donor.mkdir()
    save_file(timm.create_model("test_resnet", pretrained=False, num_classes=7).state_dict(),
              donor / "model.safetensors")
    publish(url, donor, "timm-like/test_resnet.tiny")
    out = tmp_path / "run"
    proc = fine_tune(out, "deeplabv3plus", env_for(url, tmp_path), "--tiny", "--encoder_weights",
                     "timm-like/test_resnet.tiny")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "encoder: started from hub timm-like/test_resnet.tiny" in proc.stdout
    m = json.loads((out / "metrics.json").read_text())
    assert m["encoder_weights"]["source"] == "timm-like/test_resnet.tiny" and m["encoder_weights"]["tensors_loaded"] > 10
    enc = timm_encoder(AutoModelForSemanticSegmentation.from_pretrained(out)).state_dict()
    ref = load_file(donor / "model.safetensors")
    key = next(k for k in enc if k.endswith("conv1.weight") and k in ref)
    torch.testing.assert_close(enc[key], ref[key], rtol=0, atol=1e-9)  # lr 1e-12: still the donor's
