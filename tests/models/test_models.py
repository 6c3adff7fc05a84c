"""One suite for every architecture of the model zoo (tiny settings, same code paths)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForSemanticSegmentation

from mars_segformer import PRESETS, create_model, make_image_processor, processor_for
from mars_segformer.data import normalize
from mars_segformer.models import NATIVE_PRESETS

ARCHS = sorted(PRESETS)
FRESH = Path(__file__).resolve().parents[1] / "fresh_pipeline.py"


def batch(h=64, w=128, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, h, w, generator=g), torch.randint(0, 5, (n, h, w), generator=g)


def predict(model, images_u8):
    """The training path: normalise gray tiles (resized by the config's ``input_scale``, as the dataset's
    transform does), forward, resize logits to the tile, argmax."""
    with torch.no_grad():
        logits = model(normalize(images_u8, scale=float(getattr(model.config, "input_scale", 1) or 1))).logits
    return F.interpolate(logits, size=images_u8.shape[-2:], mode="bilinear", align_corners=False).argmax(1).numpy()


@pytest.mark.parametrize("name", ARCHS)
@pytest.mark.parametrize("hw", [(64, 128), (61, 97)])
def test_output_shapes_and_loss(name, hw):
    model = create_model(name, tiny=True).eval()
    x, y = batch(*hw)
    out = model(x, labels=y)
    assert out.logits.shape[:2] == (2, 5)
    # SegFormer predicts at 1/(first stride) of the input (4, or 2 for the small-tile presets),
    # the others (UperNet included) at full resolution
    stride = model.config.strides[0] if model.config.model_type == "segformer" else 1
    assert stride == ((2 if name.endswith("-s2") else 4) if name.startswith("segformer") else 1)
    assert tuple(out.logits.shape[-2:]) == (-(-hw[0] // stride), -(-hw[1] // stride))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    proc = make_image_processor()
    maps = proc.post_process_semantic_segmentation(out, target_sizes=[hw, hw])
    assert maps[0].shape == hw


@pytest.mark.parametrize("name", ARCHS)
def test_save_reload_identical_logits(name, tmp_path):
    model = create_model(name, tiny=True).eval()
    model.save_pretrained(tmp_path)
    again = AutoModelForSemanticSegmentation.from_pretrained(tmp_path).eval()
    assert type(again) is type(model)
    # weights still backed by the safetensors file mapping can make oneDNN choose another conv kernel
    # (UperNet's logits then differ by ~1e-9); in ordinary memory the forward pass must be bit-identical
    with torch.no_grad():
        for t in [*again.parameters(), *again.buffers()]:
            t.data = t.data.clone()
    x, _ = batch()
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, again(x).logits, rtol=0, atol=0)
    assert AutoConfig.from_pretrained(tmp_path).id2label[4] == "big_rock"


@pytest.mark.parametrize("name", ARCHS)
def test_one_step_lowers_loss(name):
    torch.manual_seed(0)
    model = create_model(name, tiny=True).train()
    x, y = batch(seed=1)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    torch.manual_seed(5)
    loss0 = model(x, labels=y).loss
    loss0.backward()
    opt.step()
    torch.manual_seed(5)  # same dropout masks
    with torch.no_grad():
        loss1 = model(x, labels=y).loss
    assert loss1.item() < loss0.item()


@pytest.mark.parametrize("name", ["unet-se", "timm-segformer"])
def test_custom_init_is_not_transformers_default(name):
    """transformers 5 would give every conv N(0, 0.02); He init keeps ReLU activations alive."""
    model = create_model(name, tiny=True)
    conv = next(m for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
    fan_out = conv.out_channels * 9
    assert conv.weight.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.35)


@pytest.mark.parametrize("name, stride", [("upernet-r18", 4), ("upernet-convnext-atto", 4),
                                          ("upernet-convnext-atto-s2", 2)])
def test_upernet_backbone_first_stage_stride(name, stride):
    """The stride-2 ConvNeXt preset keeps twice ResNet's resolution in the first stage UperNet fuses (less early
    downsampling for pixel-wide rocks), in transformers' own classes."""
    model = create_model(name, tiny=True).eval()
    x, _ = batch(64, 128)
    with torch.no_grad():
        maps = model.backbone(x).feature_maps
    assert [tuple(m.shape[-2:]) for m in maps] == [(64 // (stride * 2**i), 128 // (stride * 2**i)) for i in range(4)]
    assert type(model).__module__.startswith("transformers.") and name in NATIVE_PRESETS


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model 'unet-xl'"):
        create_model("unet-xl")


def test_fresh_process_pipeline_matches_training_path(tmp_path, sample_arrays):
    """Every architecture, saved with its processor, runs in ``pipeline`` in a process where
    ``mars_segformer`` cannot be imported (the native ones, SegFormer and UperNet, without remote code),
    and a grayscale input gets the same label map as the training path."""
    images = sample_arrays.test_images[:3]
    np.save(tmp_path / "images.npy", images)
    args, expected = [], {}
    for name in ARCHS:
        torch.manual_seed(0)
        model = create_model(name, tiny=True).eval()
        folder = tmp_path / name
        model.save_pretrained(folder)
        processor_for(model.config).save_pretrained(folder)
        native = name in NATIVE_PRESETS
        arg = str(folder) + ("" if native else ":remote")
        assert ("auto_map" in (folder / "config.json").read_text()) is not native
        args.append(arg)
        expected[arg] = predict(model, images)
    proc = subprocess.run([sys.executable, str(FRESH), str(tmp_path / "images.npy"), *args],
                          capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.split("RESULT", 1)[1])
    for arg in args:
        np.testing.assert_array_equal(np.array(got[arg]), expected[arg], err_msg=arg)


def test_copied_init_weights_stay_identical():
    """The timm-encoder modeling files repeat one ``_init_weights`` (they must stand alone for
    trust_remote_code); a fix to one must reach all."""
    import inspect

    from mars_segformer.models.registry import CUSTOM_MODELS

    sources = {cls.__name__: inspect.getsource(cls._init_weights).split("def _init_weights", 1)[1]
               for cfg, cls in CUSTOM_MODELS.items() if "encoder_name" in cfg().to_dict()}
    assert len(sources) == 3 and len(set(sources.values())) == 1, sorted(sources)


def test_every_standalone_label_map_is_the_package_label_map():
    """Custom configuration files repeat the label map (they must stand alone for trust_remote_code);
    every copy must equal the one in mars_segformer.data.io."""
    import importlib

    from mars_segformer.data.io import MARS_LABELS

    for folder in ("unet", "deeplabv3plus", "timm_segformer", "timm_unet"):
        mod = importlib.import_module(f"mars_segformer.models.{folder}.configuration_mars_{folder}")
        assert mod.MARS_ID2LABEL == MARS_LABELS, folder
    for name in PRESETS:
        assert create_model(name, tiny=True).config.id2label == MARS_LABELS, name
