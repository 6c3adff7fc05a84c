"""Arrays -> ``datasets.DatasetDict`` with augmentation and normalisation applied at read time.

Tiles are stored as raw row-major uint8 bytes with their height and width: ``datasets`` hands
custom transforms python objects, and turning an ``Array2D`` into nested lists caps reading at
~750 tiles/s on one core, while bytes -> ``np.frombuffer`` costs microseconds.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from datasets import Dataset, DatasetDict, Features, Value

from .augment import (
    DEFAULT_AUGMENTATIONS,
    REFERENCE_AUGMENTATIONS,
    CutMix,
    build_augmentation,
    oversample_indices,
)
from .clean import OutlierReport, drop_outliers, find_outliers
from .copy_paste import PASTE_P, CopyPaste
from .errors import MarsDataError
from .frame_shift import SHIFT_P, ZOOM_SCALE, FrameShift
from .io import MarsArrays
from .sampling import repeat_factor_indices
from .split import SPLIT_SEED, VAL_FRACTION, train_val_split

try:  # datasets' fingerprinting pickler (a private module, stable since datasets 2.14)
    from datasets.utils._dill import pklregister
except ImportError:  # pragma: no cover - without it the transform is hashed whole, as before
    pklregister = None


def _frame_shift_from_key(key: tuple) -> tuple:
    """The reduce target of FrameShift's hashing rule below (its pickle is only hashed, never loaded)."""
    return key


if pklregister is not None:
    @pklregister(FrameShift)
    def _hash_frame_shift(pickler, obj: FrameShift) -> None:
        """``set_transform`` fingerprints the dataset by pickling its transform; a FrameShift holds every tile
        (memory-mapped above a size), so it is hashed by :meth:`FrameShift.key` instead of its pixels."""
        pickler.save_reduce(_frame_shift_from_key, (obj.key(),), obj=obj)

#: Gray-level mean and std of the AI4Mars MSL tiles (0-1 scale), shared by the training path and
#: the saved image processor so that ``pipeline`` sees the same numbers.
IMAGE_MEAN = 0.235
IMAGE_STD = 0.100

FEATURES = Features(
    {
        "image": Value("binary"),  # H*W uint8, row-major
        "label": Value("binary"),  # H*W uint8 class ids 0-4 (all zero in the test split)
        "height": Value("int32"),
        "width": Value("int32"),
        "frame_id": Value("string"),
        "index": Value("int32"),  # row in the source arrays
    }
)


@dataclass
class DataConfig:
    """How the DatasetDict is built.

    Attributes:
        val_fraction: share of frames (or tiles) held out for validation.
        seed: split and augmentation seed.
        augmentations: names from ``augment.AUGMENTATIONS`` applied to training reads.
        cutmix_p: probability of CutMix per training read (0 disables it).
        copy_paste_p: probability that a training read gets big-rock instances, with ``copy_paste`` among the
            augmentations.
        oversample_big_rock: copies of each big-rock training tile (1 disables it).
        repeat_factor_threshold: LVIS repeat-factor sampling threshold (0 disables it).
        frame_read_p: share of the eligible training reads ``frame_shift`` / ``frame_zoom`` move.
        frame_zoom_until: share of the training steps ``frame_zoom`` zooms its reads; they are only shifted after
            (the trainer reports its progress to the dataset's :class:`FrameShift`).
        drop_outliers: drop tiles sharing a multi-class mask with at least ``outlier_min_count`` others.
        outlier_min_count: see ``drop_outliers``.
        num_channels: channels the model expects; the gray tile is repeated, as ``pipeline`` does with RGB.
    """

    val_fraction: float = VAL_FRACTION
    seed: int = SPLIT_SEED
    augmentations: Sequence[str] = field(default_factory=lambda: list(DEFAULT_AUGMENTATIONS))
    # CutMix and big-rock oversampling are off by default: both lowered validation mean IoU in the
    # ablation (docs/ablation.md); the reference recipe's settings are DataConfig.reference()
    cutmix_p: float = 0.0
    copy_paste_p: float = PASTE_P
    oversample_big_rock: int = 1
    #: LVIS repeat-factor sampling threshold t over tile classes (0: off); see data.sampling
    repeat_factor_threshold: float = 0.0
    frame_read_p: float = SHIFT_P
    frame_zoom_until: float = 1.0
    drop_outliers: bool = True
    outlier_min_count: int = 20
    num_channels: int = 3
    #: factor the images are resized by before the model (the saved image processor does the same)
    input_scale: float = 1.0
    #: per-channel normalisation of a pretrained backbone (None: the Mars gray level's IMAGE_MEAN / IMAGE_STD)
    image_mean: Sequence[float] | None = None
    image_std: Sequence[float] | None = None
    #: the share of training frames kept, as [start, stop) of a seeded frame order: (0, 0.5) and (0.5, 1)
    #: are disjoint halves; validation is unaffected
    train_frames: tuple[float, float] = (0.0, 1.0)
    #: with extra (e.g. pseudo-labelled) tiles: their share of the training rows, in (0, 1)
    extra_share: float = 0.5

    @classmethod
    def reference(cls, **overrides) -> DataConfig:
        """The reference report's data recipe: full augmentation set, CutMix p 0.5, big-rock tiles x15."""
        return cls(**{"augmentations": list(REFERENCE_AUGMENTATIONS), "cutmix_p": 0.5, "oversample_big_rock": 15,
                      **overrides})


#: tiles per Arrow chunk: int32 offsets of a binary array address < 2 GiB (2**31 / 8192 bytes per tile)
_CHUNK = 131_072


def _binary_column(tiles: np.ndarray):
    """(N, H, W) uint8 -> an Arrow binary column of N rows of H*W bytes that *views* the array's buffer
    (no Python ``bytes`` per tile and no copy: ``Dataset.from_dict`` over such a list held ~5x the tiles
    at its peak), in chunks whose int32 offsets stay below 2 GiB."""
    import pyarrow as pa

    tiles = np.ascontiguousarray(tiles, dtype=np.uint8)
    size = int(np.prod(tiles.shape[1:]))
    chunks = []
    for lo in range(0, max(len(tiles), 1), _CHUNK):
        part = tiles[lo:lo + _CHUNK]
        offsets = np.arange(len(part) + 1, dtype=np.int32) * size
        chunks.append(pa.Array.from_buffers(pa.binary(), len(part), [None, pa.py_buffer(offsets), pa.py_buffer(part)]))
    return pa.chunked_array(chunks, pa.binary())


def tiles_to_dataset(images: np.ndarray, masks: np.ndarray | None, frame_ids=None, indices=None) -> Dataset:
    """One split as a ``Dataset`` with :data:`FEATURES`, its table a view of the arrays (they must stay
    unchanged while the Dataset lives)."""
    import pyarrow as pa
    from datasets.table import InMemoryTable

    n, h, w = images.shape
    # np.zeros, not zeros_like: calloc'd pages stay untouched (not resident) until a row is read
    masks = np.zeros(images.shape, np.uint8) if masks is None else masks
    ids = [""] * n if frame_ids is None else [str(f) for f in frame_ids]
    idx = np.arange(n) if indices is None else np.asarray(indices)
    table = pa.table({
        "image": _binary_column(images),
        "label": _binary_column(masks.astype(np.uint8, copy=False)),
        "height": pa.array(np.full(n, h, np.int32)),
        "width": pa.array(np.full(n, w, np.int32)),
        "frame_id": pa.array(ids, pa.string()),
        "index": pa.array(idx.astype(np.int32)),
    })
    # the features travel as schema metadata: passing them as ``info`` instead makes datasets cast (copy) the table
    # and a fingerprint given, not computed: datasets would hash (serialise) the whole table for it
    return Dataset(InMemoryTable(table.replace_schema_metadata(FEATURES.arrow_schema.metadata)),
                   fingerprint=uuid.uuid4().hex)


def decode_tiles(batch: dict) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Images and masks of a python-formatted batch, as (H, W) uint8 arrays."""
    shapes = list(zip(batch["height"], batch["width"], strict=True))
    images = [np.frombuffer(b, np.uint8).reshape(s) for b, s in zip(batch["image"], shapes, strict=True)]
    masks = [np.frombuffer(b, np.uint8).reshape(s) for b, s in zip(batch["label"], shapes, strict=True)]
    return images, masks


def config_scale(config) -> float:
    """The factor a model's tiles are resized by before it: its config's ``input_scale``, 1 when it has none."""
    return float(getattr(config, "input_scale", None) or 1)


def scaled_shape(shape, scale: float) -> tuple[int, int]:
    """(H, W) of an image of ``shape`` (..., H, W) resized by ``scale``: the size the model sees."""
    return round(shape[-2] * scale), round(shape[-1] * scale)


def upscale(images: np.ndarray, scale: float) -> np.ndarray:
    """(B, H, W) uint8 resized by ``scale`` with PIL's bilinear filter: exactly the resize of the saved
    image processor (``SegformerImageProcessor``, ``do_resize``), so training and ``pipeline`` agree."""
    from PIL import Image

    h, w = scaled_shape(images.shape, scale)
    return np.stack([np.asarray(Image.fromarray(t).resize((w, h), Image.BILINEAR)) for t in images])


def normalize(images: np.ndarray, num_channels: int = 3, scale: float = 1, mean=None, std=None) -> torch.Tensor:
    """(B, H, W) uint8 -> (B, C, H, W) float, the image processor's resize (by ``scale``, the model
    config's ``input_scale``) + rescale + normalise: by the Mars gray level's mean and std, or per
    channel by ``mean`` / ``std`` (a pretrained backbone's, e.g. ImageNet's) over the repeated gray tile."""
    if scale != 1:
        images = upscale(np.asarray(images), scale)
    x = torch.from_numpy(np.ascontiguousarray(images)).float().mul_(1.0 / 255.0)
    if mean is None:
        x = x.sub_(IMAGE_MEAN).div_(IMAGE_STD)
        return x.unsqueeze(1).expand(-1, num_channels, -1, -1).contiguous()
    m = torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return ((x.unsqueeze(1) - m) / s).expand(-1, num_channels, -1, -1).contiguous()


def model_pixels(images: np.ndarray, config, scale: float = 1.0) -> torch.Tensor:
    """:func:`normalize` as a trained model's config says: its channels, ``input_scale`` (times ``scale``,
    for multi-scale TTA) and normalisation (``image_mean`` / ``image_std``, set for pretrained backbones)."""
    return normalize(images, getattr(config, "num_channels", 3), config_scale(config) * scale,
                     getattr(config, "image_mean", None), getattr(config, "image_std", None))


class MarsTransform:
    """The ``set_transform`` callable: decode, augment (training only), normalise.

    Returns ``{"pixel_values": (B, C, H, W) float, "labels": (B, H, W) long}``, and with ``soft`` (a teacher's
    class probabilities of every row, (N, K, H, W) uint8 in 1/255) ``"soft_labels"``: (B, K, H, W) uint8, moved,
    zoomed and flipped with the image.
    """

    def __init__(self, augment=None, cutmix: CutMix | None = None, num_channels: int = 3,
                 copy_paste: CopyPaste | None = None, input_scale: float = 1, mean=None, std=None,
                 frame_shift: FrameShift | None = None, soft: np.ndarray | None = None):
        if soft is not None and (cutmix is not None or copy_paste is not None):
            raise ValueError("soft labels (distillation) do not go with CutMix or copy_paste: their pasted pixels "
                             "have no teacher probabilities")
        self.soft = soft
        self.augment, self.cutmix, self.num_channels = augment, cutmix, num_channels
        #: reads a tile of a complete frame at a shifted place in its frame (needs the row's ``index``)
        self.frame_shift = frame_shift
        self.mean, self.std = mean, std
        #: images are resized by this factor before the model (labels stay at the tile's size)
        self.input_scale = input_scale
        #: tile mixers drawing from the training pool, applied before the albumentations pipeline
        self.mixers = [m for m in (cutmix, copy_paste) if m is not None]
        self._worker = None

    def _reseed_in_worker(self) -> None:
        """In a DataLoader worker, give this copy its own random streams (from the seed torch gives the
        worker), so N workers do not draw the same flips, pastes and CutMix patches."""
        info = torch.utils.data.get_worker_info()
        if info is None or self._worker == info.id:
            return
        self._worker = info.id
        seed = int(info.seed % (2**31))
        for k, mix in enumerate([*self.mixers, *([self.frame_shift] if self.frame_shift else [])]):
            mix.rng = np.random.default_rng(seed + k)
        if self.augment is not None:
            self.augment.set_random_seed(seed)

    def __call__(self, batch: dict) -> dict:
        self._reseed_in_worker()
        images, masks = decode_tiles(batch)
        softs = [None] * len(images) if self.soft is None else [self.soft[int(r)] for r in batch["index"]]
        if self.frame_shift is not None:
            images, masks, softs = map(list, zip(*(self.frame_shift.read(i, m, r, s) for i, m, r, s
                                                   in zip(images, masks, batch["index"], softs, strict=True)),
                                                 strict=True))
        if self.mixers or self.augment is not None:
            out_i, out_m, out_s = [], [], []
            for img, msk, soft in zip(images, masks, softs, strict=True):
                for mix in self.mixers:
                    img, msk = mix(img, msk)
                if self.augment is not None:
                    res = self.augment(image=img, mask=msk, **({} if soft is None else {"masks": soft}))
                    img, msk, soft = res["image"], res["mask"], res.get("masks", soft)
                out_i.append(img)
                out_m.append(msk)
                out_s.append(soft)
            images, masks, softs = out_i, out_m, out_s
        out = {
            "pixel_values": normalize(np.stack(images), self.num_channels, self.input_scale, self.mean, self.std),
            "labels": torch.from_numpy(np.stack(masks).astype(np.int64)),
        }
        if self.soft is not None:
            out["soft_labels"] = torch.from_numpy(np.stack([np.asarray(s) for s in softs]))
        return out


@dataclass
class MarsData:
    """The DatasetDict and what was learnt while building it."""

    datasets: DatasetDict
    arrays: MarsArrays
    train_indices: np.ndarray
    val_indices: np.ndarray
    outliers: OutlierReport | None
    config: DataConfig
    #: extra tiles: {"tiles", "rows", "excluded_validation_frames"} (None without extra data)
    extra: dict | None = None
    #: with ``frame_shift``: {"frames": complete training frames whose tiles are read shifted, "seam_median": their
    #: median seam ratio, None without complete frames, "p": share of their reads moved, "scale": the windows'
    #: scale range, (1, 1) without zoom, "zoom_until": share of the training steps zoomed}
    #: (None without ``frame_shift`` or ``frame_zoom``)
    frame_shift: dict | None = None
    #: the training split's shifted reads themselves, to be told the training's progress (``frame_zoom_until``)
    frame_reads: FrameShift | None = None


def clean_and_split(arrays: MarsArrays, config: DataConfig):
    """Outliers dropped (if configured), then the seeded split: ``(arrays, report, train_idx, val_idx)``.

    The one place that decides which tiles are held out, so scoring a run later (``predict --split
    validation``) sees exactly the tiles its training never saw.
    """
    report = None
    if config.drop_outliers:
        report = find_outliers(arrays.train_masks, min_count=config.outlier_min_count)
        arrays = drop_outliers(arrays, report)
    tr, va = train_val_split(arrays.train_masks, arrays.train_frame_ids, config.val_fraction, config.seed)
    if tuple(config.train_frames) != (0.0, 1.0):
        tr = select_train_frames(tr, arrays.train_frame_ids, config.train_frames, config.seed)
    return arrays, report, tr, va


def select_train_frames(train_idx: np.ndarray, frame_ids, part: tuple[float, float], seed: int) -> np.ndarray:
    """The training tiles whose frame falls in ``part`` = [start, stop) of a seeded order of the training
    frames (each tile its own frame when there are no frame ids)."""
    start, stop = part
    groups = np.asarray(train_idx) if frame_ids is None else np.asarray(frame_ids)[train_idx]
    frames = np.unique(groups)
    order = np.random.default_rng(seed + 7919).permutation(len(frames))
    lo, hi = round(start * len(frames)), round(stop * len(frames))
    chosen = np.asarray(train_idx)[np.isin(groups, frames[order[lo:hi]])]
    if len(chosen) == 0:
        raise MarsDataError(f"train_frames {start}:{stop} keeps no training tile of {len(frames)} frames")
    return chosen


def _extra_rows(extra: MarsArrays, arrays: MarsArrays, va: np.ndarray, n_train_rows: int, config: DataConfig):
    """The extra tiles as a Dataset making up ``extra_share`` of the training rows; tiles from a validation
    frame are left out (leakage guard)."""
    if extra.train_images.shape[1:] != arrays.train_images.shape[1:]:
        raise MarsDataError(f"{extra.source}: extra tiles are {extra.train_images.shape[1:]}, the data's tiles are "
                            f"{arrays.train_images.shape[1:]}")
    keep = np.arange(len(extra))
    excluded = 0
    if extra.train_frame_ids is not None and arrays.train_frame_ids is not None:
        blocked = np.isin(extra.train_frame_ids, arrays.train_frame_ids[va])
        keep, excluded = np.flatnonzero(~blocked), int(blocked.sum())
    if len(keep) == 0:
        raise MarsDataError(f"{extra.source}: no extra tile left once validation frames are excluded")
    n_rows = max(1, round(config.extra_share / (1 - config.extra_share) * n_train_rows))
    rng = np.random.default_rng(config.seed + 104729)
    rows = rng.choice(keep, n_rows, replace=n_rows > len(keep))
    ds = tiles_to_dataset(extra.train_images[rows], extra.train_masks[rows],
                          None if extra.train_frame_ids is None else extra.train_frame_ids[rows], -1 - rows)
    return ds, {"source": extra.source, "tiles": int(len(keep)), "rows": int(n_rows),
                "excluded_validation_frame_tiles": excluded}


def _frame_shift(arrays, rows, config: DataConfig, soft: np.ndarray | None = None) -> FrameShift | None:
    """The shifted-read augmentation of ``frame_shift`` or ``frame_zoom`` (at :data:`ZOOM_SCALE`), over the
    training ``rows``; None when neither is named.

    Raises:
        ValueError: both are named (they are one augmentation; ``frame_zoom`` includes the shift).
    """
    wanted = [n for n in ("frame_shift", "frame_zoom") if n in config.augmentations]
    if len(wanted) > 1:
        raise ValueError("augmentations: name one of frame_shift and frame_zoom (frame_zoom shifts too)")
    if not wanted:
        return None
    scale = ZOOM_SCALE if wanted[0] == "frame_zoom" else (1.0, 1.0)
    return FrameShift(arrays.train_images, arrays.train_masks, arrays.train_frame_ids, rows, p=config.frame_read_p,
                      scale=scale, seed=config.seed + 2, zoom_until=config.frame_zoom_until, soft=soft)


def build_dataset_dict(arrays: MarsArrays, config: DataConfig | None = None, extra: MarsArrays | None = None,
                       soft_labels=None) -> MarsData:
    """Clean, split and wrap ``arrays`` into train / validation / test with on-the-fly transforms.

    The train split carries augmentation (and big-rock rows repeated ``oversample_big_rock`` times);
    validation and test are only normalised. ``extra`` tiles (pseudo-labels) join the train split only,
    as ``config.extra_share`` of its rows (``index`` -1-k for extra tile k), never from a validation frame.
    ``soft_labels(arrays, train_rows, val_rows)`` (distillation), called with the cleaned arrays and the split,
    gives (N, K, H, W) uint8 class probabilities of the labelled rows (in 1/255; only the training rows are
    read); the training reads then carry ``"soft_labels"`` moved with their pixels.
    """
    from datasets import concatenate_datasets

    config = config or DataConfig()
    arrays, report, tr, va = clean_and_split(arrays, config)
    soft = None if soft_labels is None else soft_labels(arrays, tr, va)
    if soft is not None and extra is not None:
        raise ValueError("soft labels (distillation) do not go with extra tiles: the extra tiles have none")
    # one table over every labelled tile, viewing the arrays; train and validation are row selections of it
    # (index mappings), so building adds next to nothing to the tiles' own memory
    labelled = tiles_to_dataset(arrays.train_images, arrays.train_masks, arrays.train_frame_ids)
    rows = np.asarray(tr)
    if config.oversample_big_rock > 1:
        rows = rows[oversample_indices(arrays.train_masks, config.oversample_big_rock, indices=tr)]
    if config.repeat_factor_threshold > 0:
        rows = rows[repeat_factor_indices(arrays.train_masks, config.repeat_factor_threshold, config.seed, indices=tr)]
    train = labelled.select(rows)
    extra_info = None
    if extra is not None:
        extra_ds, extra_info = _extra_rows(extra, arrays, va, len(train), config)
        train = concatenate_datasets([train, extra_ds])
    val = labelled.select(va)
    test = tiles_to_dataset(arrays.test_images, None, arrays.test_frame_ids)
    pool = config.cutmix_p > 0 or "copy_paste" in config.augmentations
    tr_img, tr_msk = (arrays.train_images[tr], arrays.train_masks[tr]) if pool else (None, None)
    cutmix = CutMix(tr_img, tr_msk, p=config.cutmix_p, seed=config.seed) if config.cutmix_p > 0 else None
    paste = (CopyPaste(tr_img, tr_msk, p=config.copy_paste_p, seed=config.seed + 1)
             if "copy_paste" in config.augmentations else None)
    shift = _frame_shift(arrays, tr, config, soft)
    norm = {"input_scale": config.input_scale, "mean": config.image_mean, "std": config.image_std}
    train.set_transform(MarsTransform(build_augmentation(config.augmentations, config.seed), cutmix, config.num_channels,
                                      paste, **norm, frame_shift=shift, soft=soft))
    plain = MarsTransform(None, None, config.num_channels, **norm)
    val.set_transform(plain)
    test.set_transform(plain)
    return MarsData(DatasetDict(train=train, validation=val, test=test), arrays, tr, va, report, config, extra_info,
                    None if shift is None else {"frames": shift.num_frames, "seam_median": shift.seam_median,
                                                "p": shift.p, "scale": shift.scale, "zoom_until": shift.zoom_until},
                    shift)
