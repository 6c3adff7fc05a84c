"""Batched prediction with optional flip test-time augmentation."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..data.dataset import model_pixels
from .options import TTA_MODES, PredictError, check_scales  # noqa: F401  (re-exported)


def load_model(name_or_path: str, device: str | None = None, trust_remote_code: bool = False):
    """A segmentation model from a run folder or a Hub repo id, in eval mode on ``device``."""
    from safetensors import SafetensorError
    from transformers import AutoModelForSemanticSegmentation

    import mars_segformer.models  # noqa: F401  (registers the custom architectures)

    try:
        model = AutoModelForSemanticSegmentation.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except SafetensorError as err:  # a truncated or corrupt model.safetensors
        raise PredictError(f"{name_or_path}: the weights file is damaged ({err})") from None
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise PredictError(f"{name_or_path}: cannot load a segmentation model ({str(err).splitlines()[0]})") from None
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval()


def class_ids(scores: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) logits or probabilities -> (B, H, W) class ids (argmax over C, ties to the lower id);
    (N, C) scores of N pixels -> (N,).

    On the CPU, eager ``argmax`` over dim 1 of a plain (NCHW-contiguous) tensor is ~8x slower than over a
    channels-last copy, where the classes of a pixel are adjacent (pytorch/pytorch#140000; measured in
    docs/design.md); the copy costs less than it saves. Other devices take the plain argmax.
    """
    if scores.device.type == "cpu" and scores.dim() == 4:
        scores = scores.contiguous(memory_format=torch.channels_last)
    return scores.argmax(dim=1)


@torch.no_grad()
def _upsampled_logits(model, x: torch.Tensor, size) -> torch.Tensor:
    """Logits of ``x`` resized (bilinear) to ``size``, the tiles' own (H, W)."""
    logits = model(pixel_values=x).logits
    if tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
    return logits.float()


@torch.no_grad()
def tile_logits(model, images: np.ndarray) -> torch.Tensor:
    """(B, H, W) uint8 tiles -> (B, C, H, W) float logits at the tiles' size (no TTA), on the model's device."""
    device = next(model.parameters()).device
    return _upsampled_logits(model, model_pixels(images, model.config).to(device), images.shape[-2:])


@torch.no_grad()
def predict_probs(model, images: np.ndarray, tta: str = "none", scales=(1.0,)) -> torch.Tensor:
    """(B, H, W) uint8 tiles -> (B, C, H, W) class probabilities at the tile size, averaged over the
    flips of ``tta`` at every scale of ``scales`` (each a factor on top of the model's ``input_scale``)."""
    if tta not in TTA_MODES:
        raise PredictError(f"unknown TTA mode {tta!r}; choose from {sorted(TTA_MODES)}")
    device = next(model.parameters()).device
    probs, n = None, 0
    for s in check_scales(scales):
        x = model_pixels(images, model.config, s).to(device)
        for dims in TTA_MODES[tta]:
            xi = torch.flip(x, dims) if dims else x
            logits = model(pixel_values=xi).logits.float()
            logits = torch.flip(logits, dims) if dims else logits
            if tuple(logits.shape[-2:]) != tuple(images.shape[-2:]):
                logits = F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
            p = logits.softmax(dim=1)
            probs, n = (p if probs is None else probs + p), n + 1
    return probs / n


def predict_masks(model, images: np.ndarray, batch_size: int = 64, tta: str = "none", progress: bool = True,
                  scales=(1.0,)) -> np.ndarray:
    """(N, H, W) uint8 tiles -> (N, H, W) uint8 predicted class ids, in batches with a progress bar."""
    if images.ndim != 3:
        raise PredictError(f"expected images of shape (N, H, W), got {images.shape}")
    scales = check_scales(scales)
    out = np.empty(images.shape, np.uint8)
    for i in tqdm(range(0, len(images), batch_size), desc="predict", unit="batch", disable=not progress):
        chunk = images[i:i + batch_size]
        if tta == "none" and scales == (1.0,):  # argmax of logits, exactly what post_process_semantic_segmentation does
            scores = tile_logits(model, chunk)
        else:
            scores = predict_probs(model, chunk, tta, scales)
        out[i:i + batch_size] = class_ids(scores).to(torch.uint8).cpu().numpy()
    return out
