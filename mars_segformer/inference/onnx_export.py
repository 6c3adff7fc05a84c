"""ONNX export of a trained model, checked against PyTorch with onnxruntime (``pip install .[onnx]``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..data.dataset import config_scale, model_pixels, scaled_shape
from ..outputs import atomic_path


class _LogitsOnly(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model(pixel_values=pixel_values).logits


def export_onnx(model, path: str | os.PathLike, tile_shape=(64, 128), opset: int = 17) -> Path:
    """Export ``pixel_values (B, C, H, W) -> logits`` with a dynamic batch size (written, then renamed)."""
    path = Path(path)
    model = model.cpu().eval()
    channels = getattr(model.config, "num_channels", 3)
    dummy = torch.zeros(2, channels, *scaled_shape(tile_shape, config_scale(model.config)))
    # the TorchScript exporter: the dynamo one needs onnxscript, which nothing else here uses
    with atomic_path(path) as tmp:
        torch.onnx.export(_LogitsOnly(model), (dummy,), str(tmp), dynamo=False, opset_version=opset,
                          input_names=["pixel_values"], output_names=["logits"],
                          dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}})
    return path


def check_onnx(model, path: str | os.PathLike, images: np.ndarray) -> dict:
    """Masks of onnxruntime vs PyTorch on ``images`` ((N, H, W) uint8): agreement and max logit gap."""
    import onnxruntime as ort

    x = model_pixels(images, model.config)
    with torch.no_grad():
        ref = model.cpu().eval()(pixel_values=x).logits.numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"pixel_values": x.numpy()})[0]
    return {
        "pixel_agreement": float((ref.argmax(1) == got.argmax(1)).mean()),
        "max_abs_logit_diff": float(np.abs(ref - got).max()),
    }
