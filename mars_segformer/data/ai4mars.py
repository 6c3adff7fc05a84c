"""Converting the AI4Mars release layout (NAVCAM ``.JPG`` frames + label ``.png`` masks) into tiles.

AI4Mars (Swan et al., CVPR Workshops 2021) ships, for Curiosity (MSL)::

    msl/images/edr/<frame>.JPG                      1024x1024 grayscale NAVCAM frames
    msl/labels/train/<frame>.png                    0 soil, 1 bedrock, 2 sand, 3 big rock, 255 null
    msl/labels/test/masked-gold-*/<frame>_merged.png

Frames are resized (image bilinear, mask nearest) and cut into non-overlapping tiles, exactly as
``ai4mars_msl_64x128.npz`` was made, so models trained on either source see the same statistics.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import MarsDataError
from .io import FRAME_SIZE, TILE_SHAPE, MarsArrays, arrays_from_course_layout

#: AI4Mars label value -> project class id (null 255 -> background 0, classes shifted to 1-4).
AI4MARS_LABEL_MAP = {0: 1, 1: 2, 2: 3, 3: 4, 255: 0}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def map_ai4mars_labels(label: np.ndarray, where: str) -> np.ndarray:
    """Map raw AI4Mars label values onto class ids 0-4."""
    lut = np.full(256, 255, np.uint8)
    for raw, cls in AI4MARS_LABEL_MAP.items():
        lut[raw] = cls
    mapped = lut[label]
    if (mapped == 255).any():
        bad = sorted(set(np.unique(label[mapped == 255]).tolist()))
        raise MarsDataError(f"{where}: label values {bad} are not AI4Mars classes (0-3 or 255 null)")
    return mapped


def tile_frame(
    image: np.ndarray, mask: np.ndarray | None, frame_size: tuple[int, int] = (FRAME_SIZE, FRAME_SIZE),
    tile_shape: tuple[int, int] = TILE_SHAPE,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Resize one frame and cut it into non-overlapping tiles, row by row.

    Args:
        image: (H, W) uint8 frame.
        mask: (H, W) uint8 class ids, or None.
        frame_size: (height, width) the frame is resized to first.
        tile_shape: (height, width) of each tile; must divide ``frame_size``.

    Returns:
        Tiles (T, th, tw) of the image and of the mask (None without a mask).
    """
    fh, fw = frame_size
    th, tw = tile_shape
    if fh % th or fw % tw:
        raise MarsDataError(f"frame size {frame_size} is not a multiple of the tile shape {tile_shape}")
    tiles = cut_tiles(np.asarray(Image.fromarray(image).resize((fw, fh), Image.BILINEAR)), tile_shape)
    if mask is None:
        return tiles, None
    return tiles, cut_tiles(np.asarray(Image.fromarray(mask).resize((fw, fh), Image.NEAREST)), tile_shape)


def cut_tiles(frames: np.ndarray, tile_shape: tuple[int, int] = TILE_SHAPE) -> np.ndarray:
    """(..., fh, fw) frames -> (T, th, tw) tiles, each frame's row by row (the shared file's layout).

    ``tile_shape`` must divide the frame size (:func:`tile_frame` checks it).
    """
    (fh, fw), (th, tw) = frames.shape[-2:], tile_shape
    # (F, fh, fw) -> (F, fh/th, th, fw/tw, tw) -> (F, fh/th, fw/tw, th, tw) -> (T, th, tw)
    return frames.reshape(-1, fh // th, th, fw // tw, tw).transpose(0, 1, 3, 2, 4).reshape(-1, th, tw)


def join_tiles(tiles: np.ndarray, frame_shape: tuple[int, int] = (FRAME_SIZE, FRAME_SIZE)) -> np.ndarray:
    """The inverse of :func:`cut_tiles`: (F*T, th, tw) tiles of complete frames, in order -> (F, fh, fw) frames."""
    (fh, fw), (th, tw) = frame_shape, tiles.shape[-2:]
    return tiles.reshape(-1, fh // th, fw // tw, th, tw).transpose(0, 1, 3, 2, 4).reshape(-1, fh, fw)


def _read_gray(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L"))
    except OSError as err:
        raise MarsDataError(f"{path}: not a readable image ({err})") from err


def _read_label(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "P", "I", "I;16"):
                im = im.convert("L")
            arr = np.asarray(im)
    except OSError as err:
        raise MarsDataError(f"{path}: not a readable label image ({err})") from err
    if arr.ndim == 3:
        arr = arr[..., 0]
    if arr.max(initial=0) > 255:
        raise MarsDataError(f"{path}: label values up to {int(arr.max())}; AI4Mars labels are 0-3 or 255")
    return map_ai4mars_labels(arr.astype(np.uint8), str(path))


def _find_msl_root(root: Path) -> Path:
    for cand in (root, root / "msl", *root.glob("*/msl")):
        if (cand / "images").is_dir() and (cand / "labels").is_dir():
            return cand
    raise MarsDataError(f"{root}: no AI4Mars layout found (expected 'images/edr' and 'labels/train' under it or under 'msl/')")


def load_ai4mars_folder(
    root: str | os.PathLike,
    frame_size: tuple[int, int] = (FRAME_SIZE, FRAME_SIZE),
    tile_shape: tuple[int, int] = TILE_SHAPE,
    min_labelled: float = 0.10,
    test_subset: str | None = None,
) -> MarsArrays:
    """Read an AI4Mars MSL folder into course-layout tiles.

    Labelled frames under ``labels/train`` become ``training_set``; the frames of the expert-labelled
    ``labels/test/<test_subset>`` become ``test_set`` (images only: their labels are withheld, as in
    the course file). Tiles with fewer than ``min_labelled`` labelled pixels are dropped from training.

    Args:
        root: the release root, or its ``msl`` folder.
        frame_size: (height, width) every frame is resized to before tiling.
        tile_shape: tile (height, width).
        min_labelled: minimum share of non-background pixels for a training tile to be kept.
        test_subset: folder under ``labels/test`` (default: the strictest ``*min3*`` when present).
    """
    root = Path(root)
    if not root.exists():
        raise MarsDataError(f"{root}: no such folder")
    msl = _find_msl_root(root)
    edr = msl / "images" / "edr"
    if not edr.is_dir():
        raise MarsDataError(f"{msl}: missing folder 'images/edr' holding the NAVCAM frames")
    images = {p.stem: p for p in edr.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    tr_img, tr_msk, tr_ids = _train_tiles(msl / "labels" / "train", edr, images, frame_size, tile_shape, min_labelled)
    te_img, te_ids = _test_tiles(msl / "labels" / "test", images, frame_size, tile_shape, test_subset)
    training_set = np.stack([tr_img, tr_msk], axis=1)
    test_set = np.concatenate(te_img) if te_img else np.zeros((0, *tile_shape), np.uint8)
    return arrays_from_course_layout(
        training_set, test_set, np.array(tr_ids), np.array(te_ids) if te_ids else None, source=str(root)
    )


def _train_tiles(train_dir: Path, edr: Path, images: dict, frame_size, tile_shape, min_labelled: float):
    """The labelled frames' tiles with at least ``min_labelled`` labelled pixels: (images, masks, frame ids)."""
    labels = sorted(train_dir.glob("*.png")) if train_dir.is_dir() else []
    if not labels:
        raise MarsDataError(f"{train_dir}: no label .png files found")
    tr_img, tr_msk, tr_ids = [], [], []
    for lab in labels:
        stem = lab.stem
        if stem not in images:
            raise MarsDataError(f"{lab}: no matching image '{stem}.JPG' in {edr}")
        img_tiles, msk_tiles = tile_frame(_read_gray(images[stem]), _read_label(lab), frame_size, tile_shape)
        keep = (msk_tiles > 0).mean(axis=(1, 2)) >= min_labelled
        tr_img.append(img_tiles[keep])
        tr_msk.append(msk_tiles[keep])
        tr_ids += [stem] * int(keep.sum())
    if not tr_ids:
        raise MarsDataError(f"{train_dir}: every tile has under {min_labelled:.0%} labelled pixels; nothing to train on")
    return np.concatenate(tr_img), np.concatenate(tr_msk), tr_ids


def _test_tiles(test_root: Path, images: dict, frame_size, tile_shape, test_subset: str | None):
    """The tiles of one expert-labelled test subset's frames (images only): (list of tile arrays, frame ids)."""
    subsets = sorted(p for p in test_root.iterdir() if p.is_dir()) if test_root.is_dir() else []
    if test_subset is not None:
        subsets = [p for p in subsets if p.name == test_subset]
        if not subsets:
            raise MarsDataError(f"{test_root}: no test subset folder '{test_subset}'")
    te_img, te_ids = [], []
    if subsets:
        chosen = next((p for p in subsets if "min3" in p.name), subsets[0])
        for lab in sorted(chosen.glob("*.png")):
            stem = lab.stem.removesuffix("_merged")
            if stem in images:
                tiles, _ = tile_frame(_read_gray(images[stem]), None, frame_size, tile_shape)
                te_img.append(tiles)
                te_ids += [stem] * len(tiles)
    return te_img, te_ids

