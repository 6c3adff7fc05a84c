"""Whole images in, masks out: bring a frame to the model's tile scale, predict it, and return the mask at the
image's own size.

Two ways (``options.FRAME_MODES``):

- ``whole`` (the default): the model sees the frame at once (reflect-padded to a multiple of
  ``WHOLE_MULTIPLE``, then cropped). A tile-trained model does better this way: on the complete validation
  frames of the default's full-length runs, task mIoU 0.711 / 0.718 against 0.649 / 0.647 tile by tile and
  0.682 / 0.705 with windows, big rock 0.337 / 0.275 (``bench/frame_context.py``, docs/results.md): a rock face
  cut by a tile's edge is seen whole, with its outline and shadow. (SegFormer-b0 measured better with windows.)
- ``windows``: overlapping windows of the training tile size, on the tiles' grid and on the grid shifted by
  half a tile, each weighted by a tent that is highest at the window's centre and near zero at its edges,
  blended; what the model saw in training, with no seams.
"""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from ..data.io import CLASS_NAMES, TILE_SCALE, TILE_SHAPE
from ..outputs import atomic_path, atomic_write_json
from ..visualization import PALETTE, overlay
from .options import check_frame_mode
from .predictor import PredictError, predict_probs

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
#: a whole frame is padded to a multiple of this: the deepest stride of every preset's encoder
WHOLE_MULTIPLE = 32


def image_paths(spec: str) -> list[Path]:
    """A file, a folder (its images, sorted) or a glob -> image paths.

    Raises:
        PredictError: nothing matches, or a folder holds no images.
    """
    path = Path(spec)
    if path.is_file():
        return [path]
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise PredictError(f"--images {spec}: the folder holds no image files ({', '.join(IMAGE_SUFFIXES)})")
        return found
    if any(c in spec for c in "*?["):
        found = sorted(Path(p) for p in glob.glob(spec) if Path(p).is_file())
        if not found:
            raise PredictError(f"--images {spec!r}: the pattern matches no file")
        return found
    raise PredictError(f"--images {spec}: no such file or folder")


def read_gray(path: Path) -> np.ndarray:
    """(H, W) uint8 gray image of any PIL-readable file (RGB is converted as the pipeline's gray tiles are).

    16-bit and 32-bit gray images (PIL modes ``I;16*``, ``I``) are scaled to 0-255 by their type's range
    (x / 257 for 16 bits), not clipped as PIL's ``convert("L")`` does; float images (mode ``F``) are read
    as 0-1 when their maximum is at most 1, else as 0-255.
    """
    try:
        with Image.open(path) as im:
            if im.mode.startswith("I;16") or im.mode == "I":
                a = np.asarray(im).astype(np.float64)
                top = 65535.0 if im.mode.startswith("I;16") or a.max() <= 65535 else float(2**32 - 1)
                return np.clip(np.rint(a * 255.0 / top), 0, 255).astype(np.uint8)
            if im.mode == "F":
                a = np.asarray(im).astype(np.float64)
                a = a * 255.0 if np.nanmax(a) <= 1 else a
                return np.clip(np.rint(np.nan_to_num(a)), 0, 255).astype(np.uint8)
            return np.asarray(im.convert("L"))
    except (UnidentifiedImageError, OSError) as err:
        raise PredictError(f"{path}: not a readable image ({type(err).__name__})") from None


def _tent(n: int) -> np.ndarray:
    x = np.arange(n, dtype=np.float32)
    return np.minimum(x + 0.5, n - x - 0.5) / (n / 2)  # 1/n at the edges, ~1 at the centre


def _starts(size: int, tile: int, step: int) -> list[int]:
    starts = list(range(0, max(size - tile, 0) + 1, step))
    if starts[-1] + tile < size:
        starts.append(size - tile)  # the last window flush with the border
    return starts


def predict_frame_probs(model, image: np.ndarray, tile: tuple[int, int] = TILE_SHAPE, batch_size: int = 32,
                        tta: str = "none") -> np.ndarray:
    """(H, W) uint8 image at the model's tile scale -> (C, H, W) blended class probabilities."""
    th, tw = tile
    h, w = image.shape
    ph, pw = max(th - h, 0), max(tw - w, 0)
    if ph or pw:  # smaller than one tile: reflect-pad, predict, crop
        image = np.pad(image, ((0, ph), (0, pw)), mode="reflect" if min(h, w) > 1 else "edge")
    H, W = image.shape
    weight = np.outer(_tent(th), _tent(tw)).astype(np.float32)
    boxes = [(y, x) for y in _starts(H, th, th // 2) for x in _starts(W, tw, tw // 2)]
    acc, norm = None, np.zeros((H, W), np.float32)
    for i in range(0, len(boxes), batch_size):
        chunk = boxes[i:i + batch_size]
        tiles = np.stack([image[y:y + th, x:x + tw] for y, x in chunk])
        probs = predict_probs(model, tiles, tta).cpu().numpy()  # (B, C, th, tw)
        if acc is None:
            acc = np.zeros((probs.shape[1], H, W), np.float32)
        for (y, x), p in zip(chunk, probs, strict=True):
            acc[:, y:y + th, x:x + tw] += p * weight
            norm[y:y + th, x:x + tw] += weight
    return (acc / norm)[:, :h, :w]


def predict_whole_probs(model, image: np.ndarray, tta: str = "none") -> np.ndarray:
    """(H, W) uint8 image at the model's tile scale -> (C, H, W) class probabilities, the model seeing it at once.

    The image is reflect-padded on the bottom and right to at least one tile and to a multiple of
    ``WHOLE_MULTIPLE`` (so every encoder stage divides evenly), predicted, and cropped back.
    """
    h, w = image.shape
    H = max(h, TILE_SHAPE[0]) + (-max(h, TILE_SHAPE[0])) % WHOLE_MULTIPLE
    W = max(w, TILE_SHAPE[1]) + (-max(w, TILE_SHAPE[1])) % WHOLE_MULTIPLE
    padded = np.pad(image, ((0, H - h), (0, W - w)), mode="reflect")  # numpy reflects again past the image's size
    return predict_probs(model, padded[None], tta)[0, :, :h, :w].cpu().numpy()


def model_tile_scale(model) -> float:
    """The scale of the frames a model's training tiles were cut from, relative to native NAVCAM pixels."""
    return float(getattr(model.config, "tile_scale", TILE_SCALE))


def predict_image(model, image: np.ndarray, image_scale: float = 1.0, batch_size: int = 32,
                  tta: str = "none", mode: str = "whole") -> np.ndarray:
    """(H, W) uint8 image whose pixels are at ``image_scale`` of native NAVCAM resolution -> (H, W) mask.

    The image is resized to the model's tile scale, predicted (``mode``: one of ``options.FRAME_MODES``), and its
    class probabilities are resized back, so the mask has the input's size.
    """
    check_frame_mode(mode)
    h, w = image.shape
    factor = model_tile_scale(model) / image_scale
    sh, sw = max(1, round(h * factor)), max(1, round(w * factor))
    small = image if (sh, sw) == (h, w) else np.asarray(Image.fromarray(image).resize((sw, sh), Image.BILINEAR))
    probs = (predict_whole_probs(model, small, tta) if mode == "whole"
             else predict_frame_probs(model, small, batch_size=batch_size, tta=tta))
    if (sh, sw) != (h, w):
        t = F.interpolate(torch.from_numpy(probs)[None], size=(h, w), mode="bilinear", align_corners=False)
        probs = t[0].numpy()
    return probs.argmax(0).astype(np.uint8)


def legend_strip(class_names=CLASS_NAMES) -> np.ndarray:
    """(22, w, 3) white strip with a colour box and the name of each class, to sit under an overlay."""
    from PIL import ImageDraw

    h, width = 22, 8 + sum(16 + 6 * len(n) + 14 for n in class_names)
    strip = Image.new("RGB", (width, h), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    x = 4
    for c, name in enumerate(class_names):
        draw.rectangle([x, 5, x + 12, 17], fill=tuple(int(v) for v in PALETTE[c]), outline=(0, 0, 0))
        draw.text((x + 16, 5), name.replace("_", " "), fill=(0, 0, 0))
        x += 16 + 6 * len(name) + 14
    return np.asarray(strip)


def area_shares(mask: np.ndarray) -> dict[str, float]:
    """Share of the image's pixels per class."""
    shares = np.bincount(mask.ravel(), minlength=len(CLASS_NAMES))[:len(CLASS_NAMES)] / mask.size
    return {n: round(float(s), 6) for n, s in zip(CLASS_NAMES, shares, strict=True)}


def overlay_with_legend(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(H + 22, max(W, legend), 3) RGB: the coloured mask over the gray image, the legend strip below."""
    ov, legend = overlay(image, mask), legend_strip()
    width = max(ov.shape[1], legend.shape[1])
    pad = [np.pad(a, ((0, 0), (0, width - a.shape[1]), (0, 0)), constant_values=255) for a in (ov, legend)]
    return np.concatenate(pad, 0)


def write_image_outputs(path: Path, image: np.ndarray, mask: np.ndarray, out: Path) -> dict:
    """``<stem>_mask.png`` (class ids), ``<stem>_overlay.png`` (with a legend) and ``<stem>.json`` (class
    area shares); each written under a temporary name, then renamed."""
    stem = path.stem
    info = {"image": str(path), "height": int(mask.shape[0]), "width": int(mask.shape[1]),
            "area_share": area_shares(mask)}
    for name, array in ((f"{stem}_mask.png", mask), (f"{stem}_overlay.png", overlay_with_legend(image, mask))):
        with atomic_path(out / name) as tmp:
            Image.fromarray(array).save(tmp)
    atomic_write_json(out / f"{stem}.json", info)
    return info
