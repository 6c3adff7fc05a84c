"""Backbone checkpoints of other model families -> a native UperNet: each family's tiny random checkpoint
(in its real layout) published on the local Hub server and fine-tuned by repo id in a fresh cache; every
backbone tensor is the checkpoint's after a step at a rate that cannot move it, the new tensors are exactly
the decode head's, and the run folder runs in ``pipeline`` in a fresh process with no remote code."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import (
    AutoModelForSemanticSegmentation,
    BertConfig,
    BertModel,
    ConvNextConfig,
    ConvNextForImageClassification,
    ConvNextImageProcessor,
    ConvNextV2Config,
    ConvNextV2ForImageClassification,
    Dinov2Config,
    Dinov2Model,
    ResNetConfig,
    ResNetForImageClassification,
    SwinConfig,
    SwinForImageClassification,
)

from mars_segformer.data import load_arrays
from mars_segformer.data.dataset import upscale
from mars_segformer.models.backbones import IMAGENET_MEAN, IMAGENET_STD
from tests.hub.test_hub import env_for
from tests.models.test_pretrained import FRESH, fine_tune, hub, publish  # noqa: F401  (hub is a fixture)

FAMILIES = {
    # family -> (the checkpoint class as published, its config, the prefix of the backbone inside it)
    "resnet": (ResNetForImageClassification, ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 16, 32],
                                                          depths=[1, 1, 1, 1], layer_type="basic", num_labels=10), "resnet."),
    "convnext": (ConvNextForImageClassification, ConvNextConfig(hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1],
                                                                num_labels=10), "convnext."),
    "convnextv2": (ConvNextV2ForImageClassification, ConvNextV2Config(hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1],
                                                                      num_labels=10), "convnextv2."),
    "swin": (SwinForImageClassification, SwinConfig(image_size=64, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1],
                                                    num_heads=[1, 1, 2, 2], window_size=4, num_labels=10), "swin."),
    "dinov2": (Dinov2Model, Dinov2Config(hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                                         intermediate_size=32, patch_size=8, image_size=64), ""),
}


def backbone_params(model, prefix: str) -> dict[str, torch.Tensor]:
    """The checkpoint's backbone parameters, without the family's prefix (timm's names have none)."""
    out = {}
    for k, v in model.named_parameters():
        if k.startswith(("classifier", "pooler", "fc.")):
            continue
        out[k.removeprefix(prefix) if prefix != "_backbone." else k] = v.detach().clone()
    return out


class TimmCheckpoint:
    """timm's own Hub layout (``timm/resnet18.a1_in1k``: config.json with ``architecture`` + timm tensor names),
    of timm's tiny ``test_resnet``."""

    def __init__(self, config=None):
        import timm

        self.model = timm.create_model("test_resnet", pretrained=False, num_classes=7)

    def save_pretrained(self, folder):
        import timm.models._hub as timm_hub

        timm_hub.save_for_hf(self.model, str(folder), safe_serialization=True)

    def named_parameters(self):
        return self.model.named_parameters()


FAMILIES["timm test_resnet"] = (TimmCheckpoint, None, "_backbone.")


#: one xdist worker runs this module (`--dist loadgroup`), so the fine-tuned runs below are made once
pytestmark = pytest.mark.xdist_group(__name__)


@pytest.fixture(scope="module")
def family_runs(hub, tmp_path_factory):  # noqa: F811
    """Every family's checkpoint published and fine-tuned by repo id (each in its own fresh cache), then all
    the run folders that trained run in ``pipeline`` in one fresh process (one start instead of one per family).

    Returns:
        family -> [source model, fine-tuning process, run folder, normalisation, fresh-process masks or None],
        and the images the masks are of.
    """
    state, url = hub
    base = tmp_path_factory.mktemp("families")
    made = {}
    for family in sorted(FAMILIES):
        cls, config, _ = FAMILIES[family]
        work, repo = base / family.replace(" ", "-"), f"someone/tiny-{family.replace(' ', '-')}"
        torch.manual_seed(0)
        source = cls(config)
        source.save_pretrained(work / "ckpt")
        norm = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)) if family.startswith("timm") else (IMAGENET_MEAN, IMAGENET_STD)
        if family == "convnext":  # a checkpoint with its own image processor: its statistics are the ones used
            norm = ((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
            ConvNextImageProcessor(image_mean=list(norm[0]), image_std=list(norm[1])).save_pretrained(work / "ckpt")
        publish(url, work / "ckpt", repo)
        made[family] = [source, fine_tune(work / "run", repo, env_for(url, work)), work / "run", norm, None]
    # pipeline in a process without this package, over every run folder that trained
    images = load_arrays().test_images[:2]
    np.save(base / "images.npy", images)
    trained = [str(m[2]) for m in made.values() if m[1].returncode == 0]
    fresh = subprocess.run([sys.executable, str(FRESH), str(base / "images.npy"), *trained], capture_output=True,
                           text=True, timeout=600)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    masks = json.loads(fresh.stdout.split("RESULT", 1)[1])
    for m in made.values():
        m[4] = np.array(masks[str(m[2])]) if str(m[2]) in masks else None
    return made, images


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_backbone_checkpoint_fine_tunes_by_repo_id_and_runs_in_pipeline(family_runs, family):
    made, images = family_runs
    source, proc, out, norm, masks = made[family]
    prefix = FAMILIES[family][2]
    repo = f"someone/tiny-{family.replace(' ', '-')}"
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"model: started from hub {repo} (the {family} backbone in a new UperNet" in proc.stdout
    tuned = AutoModelForSemanticSegmentation.from_pretrained(out)
    assert type(tuned).__name__ == "UperNetForSemanticSegmentation" and "auto_map" not in (out / "config.json").read_text()
    got = {k.removeprefix("backbone."): v for k, v in tuned.named_parameters() if k.startswith("backbone.")}
    ref = backbone_params(source, prefix)
    matched, absent = 0, []
    for key, tensor in got.items():
        # the backbone class may name the same tensors with or without the family's inner module prefix
        bare = key.removeprefix(prefix) if prefix else key
        src = ref.get(bare) if bare in ref else next((v for k, v in ref.items() if k.endswith("." + bare)), None)
        if src is None:  # a tensor of the backbone class the checkpoint lacks (ConvNeXt's output norms)
            absent.append(key)
            continue
        torch.testing.assert_close(tensor, src, rtol=0, atol=1e-9, msg=key)
        matched += 1
    assert matched > 0 and len(absent) < matched
    m = json.loads((out / "metrics.json").read_text())
    heads = [k for k in tuned.state_dict() if not k.startswith("backbone.")]
    assert all(k.startswith("decode_head.") for k in heads)
    # the new tensors are exactly the decode head's and the checkpoint's missing ones (norm weight + bias each)
    absent_all = [k for k in tuned.state_dict() if k.startswith("backbone.") and k.removeprefix("backbone.").split(".")[0]
                  in {a.split(".")[0] for a in absent}]
    assert m["base_model"]["tensors_new"] == len(heads) + len(absent_all)
    assert m["base_model"]["backbone"]["family"] == family
    np.testing.assert_allclose(m["base_model"]["backbone"]["image_mean"], norm[0])
    proc_cfg = json.loads((out / "preprocessor_config.json").read_text())
    np.testing.assert_allclose(proc_cfg["image_mean"], norm[0])
    np.testing.assert_allclose(proc_cfg["image_std"], norm[1])
    # pipeline in a fresh process (the fixture): the training path's masks, with the backbone's normalisation
    assert masks is not None
    # the new UperNet is the default preset's shape: 96-channel decoder, tiles x1.5 (PIL's bilinear, as the saved
    # processor resizes: tests/training/test_input_scale.py)
    assert tuned.config.hidden_size == 96 and tuned.config.input_scale == 1.5
    assert (proc_cfg["do_resize"], proc_cfg["size"]) == (True, {"height": 96, "width": 192})
    x = torch.from_numpy(upscale(images, 1.5)).float()[:, None] / 255
    x = ((x - torch.tensor(norm[0]).view(1, 3, 1, 1)) / torch.tensor(norm[1]).view(1, 3, 1, 1))  # the gray tile x 3
    with torch.no_grad():
        logits = tuned.eval()(pixel_values=x).logits  # at 96x192; pipeline's post-processing resizes to the tile
    expected = torch.nn.functional.interpolate(logits, size=images.shape[-2:], mode="bilinear",
                                               align_corners=False).argmax(1).numpy()
    np.testing.assert_array_equal(masks, expected)


def test_a_family_without_a_backbone_class_is_one_line(tmp_path, capsys):
    from mars_segformer.training import main as train_main

    BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=37)).save_pretrained(tmp_path / "bert")
    out = tmp_path / "run"
    assert train_main(["--model", str(tmp_path / "bert"), "--output_dir", str(out), "--max_steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "a 'bert' checkpoint is not a semantic-segmentation or SegFormer-family model, and its family has no " \
           "backbone class" in err and not out.exists()


def test_stages_that_do_not_fit_a_tile_are_one_line(tmp_path, capsys):
    """A ViT backbone whose 120-pixel patches are larger than a 64x128 tile seen x1.5 (the default's scale)."""
    from mars_segformer.training import main as train_main

    Dinov2Model(Dinov2Config(hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32,
                             patch_size=120, image_size=240)).save_pretrained(tmp_path / "big_patches")
    out = tmp_path / "run"
    assert train_main(["--model", str(tmp_path / "big_patches"), "--output_dir", str(out), "--max_steps", "1"]) == 2
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [next(
        line for line in err.splitlines() if "its stages do not fit a 96x192 tile" in line)], err[-2000:]
    assert not out.exists()
    # the dry run is at the run's own scale: 80-pixel patches fit the default's 96x192 but not --input_scale 1
    Dinov2Model(Dinov2Config(hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32,
                             patch_size=80, image_size=160)).save_pretrained(tmp_path / "patches_80")
    assert train_main(["--model", str(tmp_path / "patches_80"), "--output_dir", str(out), "--max_steps", "1",
                       "--input_scale", "1"]) == 2
    assert "its stages do not fit a 64x128 tile" in capsys.readouterr().err and not out.exists()


def test_layer_wise_lr_decay_over_a_transformer_backbone(tmp_path):
    """A 4-block DINOv2 backbone in a UperNet, --layer_lr_decay 0.5 with --encoder_lr_scale 0.2: block d (1-4)
    runs at 0.2 * 0.5^(5-d), the embeddings at 0.2 * 0.5^5, the final norm at 0.2, the decode head at 1."""
    import re

    from mars_segformer.models.pretrained import load_pretrained
    from mars_segformer.training.run import _parse
    from mars_segformer.training.trainer import MarsTrainer

    Dinov2Model(FAMILIES["dinov2"][1]).save_pretrained(tmp_path / "dino")
    model, _ = load_pretrained(str(tmp_path / "dino"))
    args = _parse(["--output_dir", str(tmp_path / "o"), "--learning_rate", "1e-3", "--report_to", "none",
                   "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false"])[3]
    from mars_segformer.models.pretrained import encoder_parameters, layer_lr_scales

    layers = layer_lr_scales(model, 0.5)
    scales = {id(t): 0.2 * layers.get(id(t), 1.0) for t in encoder_parameters(model)}
    opt = MarsTrainer(model=model, args=args, lr_scales=scales).create_optimizer()
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    seen = set()
    for name, p in model.named_parameters():
        m = re.search(r"encoder\.layer\.(\d+)\.", name)
        if not name.startswith("backbone."):
            expected = 1e-3
        elif m:
            expected = 1e-3 * 0.2 * 0.5 ** (4 - int(m.group(1)))  # block index 0-3 is depth 1-4
        elif ".embeddings." in name:
            expected = 1e-3 * 0.2 * 0.5 ** 5
        else:  # the backbone's final layer norm
            expected = 1e-3 * 0.2
        assert lr_of[id(p)] == pytest.approx(expected, rel=1e-9), name
        seen.add(round(expected, 12))
    assert len(seen) == 7  # head, 4 blocks, embeddings, final norm


@pytest.mark.parametrize("kind", ["backbone checkpoint", "preset"])
def test_overrides_cost_one_blank_tile_forward(tmp_path, monkeypatch, kind):
    """--model_overrides are checked by running a blank tile through the model before training; a backbone
    checkpoint's new UperNet already runs one with them (its stages-fit check), so it is not run twice."""
    from transformers import UperNetForSemanticSegmentation

    from mars_segformer.training import run
    from mars_segformer.training.arguments import ModelArguments

    calls = []
    forward = UperNetForSemanticSegmentation.forward
    monkeypatch.setattr(UperNetForSemanticSegmentation, "forward",
                        lambda self, *a, **kw: calls.append(kw["pixel_values"].shape) or forward(self, *a, **kw))
    if kind == "preset":
        model_args, source = ModelArguments(model="upernet-r18", tiny=True), "preset"
    else:
        cls, config, _ = FAMILIES["resnet"]
        cls(config).save_pretrained(tmp_path / "ckpt")
        model_args, source = ModelArguments(model=str(tmp_path / "ckpt")), "folder"
    model, start, _ = run._start_model(model_args, source, {"hidden_size": 16}, None)
    assert model.config.hidden_size == 16
    # one forward, of a tile as the model sees it: x1.5 for a backbone start (the default preset's scale)
    assert len(calls) == 1 and tuple(calls[0][-2:]) == ((64, 128) if kind == "preset" else (96, 192))
    assert bool(start.backbone) == (kind != "preset")
