"""Reading Mars terrain arrays in the course layout (``mars_for_students.npz``) and validating them.

Every loader returns :class:`MarsArrays`: images as ``uint8`` in 0-255 (whatever the stored dtype),
masks as ``uint8`` in 0-4, optional frame ids. Keeping one canonical image dtype means the training
path, the image processor (``rescale_factor=1/255``) and the ``pipeline`` (PIL images are 0-255)
all see identical numbers.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..outputs import atomic_path
from .errors import MarsDataError

NUM_CLASSES = 5
CLASS_NAMES = ("background", "soil", "bedrock", "sand", "big_rock")
#: the Mars label map (id -> name) every model and data file must agree on
MARS_LABELS = dict(enumerate(CLASS_NAMES))
TILE_SHAPE = (64, 128)
#: NAVCAM frames are 1024×1024; the training tiles were cut from frames reduced to 256×256, so a tile
#: pixel covers 4×4 native pixels. A model records the scale it was trained at (``config.tile_scale``).
NATIVE_FRAME_SIZE = 1024
FRAME_SIZE = 256
TILE_SCALE = FRAME_SIZE / NATIVE_FRAME_SIZE


@dataclass
class MarsArrays:
    """Validated arrays of one data source.

    Attributes:
        train_images: (N, H, W) uint8 images with masks.
        train_masks: (N, H, W) uint8 masks, values 0-4.
        test_images: (M, H, W) uint8 images without masks (M may be 0).
        train_frame_ids: (N,) str rover frame of each training tile, or None.
        test_frame_ids: (M,) str, or None.
        source: where the arrays came from, for messages and model cards.
    """

    train_images: np.ndarray
    train_masks: np.ndarray
    test_images: np.ndarray
    train_frame_ids: np.ndarray | None = None
    test_frame_ids: np.ndarray | None = None
    source: str = "<memory>"
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.train_images)

    def subset(self, indices) -> MarsArrays:
        """Training tiles at ``indices`` (test set kept as is)."""
        idx = np.asarray(indices)
        ids = None if self.train_frame_ids is None else self.train_frame_ids[idx]
        return MarsArrays(
            self.train_images[idx], self.train_masks[idx], self.test_images, ids, self.test_frame_ids,
            self.source, dict(self.meta),
        )


def to_uint8_images(images: np.ndarray, where: str, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Map images of any integer or float dtype onto uint8 0-255.

    Integers are scaled by their dtype's range when they exceed 255 (uint16 sensors); floats are read
    as 0-1 when their maximum is at most 1, else as 0-255 (the course file stores 0-255 floats).

    Raises:
        MarsDataError: for NaN/inf, negative values, or floats above 255.
    """
    if images.dtype == np.uint8:
        return images
    if images.dtype == bool or not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)):
        raise MarsDataError(f"{where}: image dtype {images.dtype} is not an integer or float type")
    if images.size == 0:
        return images.astype(np.uint8)
    if np.issubdtype(images.dtype, np.floating):
        finite = np.isfinite(images)
        if not finite.all():
            bad = np.argwhere(~finite)[0]
            raise MarsDataError(
                f"{where}: images hold NaN or inf ({int((~finite).sum())} values, first at index {tuple(int(i) for i in bad)})"
            )
    # the rule rests on the whole array's range: a chunk of a larger file passes the file's (data/mapped.py)
    lo, hi = value_range if value_range is not None else (float(images.min()), float(images.max()))
    if lo < 0:
        raise MarsDataError(f"{where}: image values must be >= 0, found minimum {lo}")
    if np.issubdtype(images.dtype, np.floating):
        if hi > 255:
            raise MarsDataError(f"{where}: float images must lie in 0-1 or 0-255, found maximum {hi}")
        scale = 255.0 if hi <= 1.0 else 1.0
        return np.clip(np.rint(images.astype(np.float32) * scale), 0, 255).astype(np.uint8)
    if hi <= 255:
        return images.astype(np.uint8)
    top = float(np.iinfo(images.dtype).max)
    return np.clip(np.rint(images.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)


def validate_masks(masks: np.ndarray, where: str) -> np.ndarray:
    """Return masks as uint8, raising when they hold anything but the integers 0-4."""
    if np.issubdtype(masks.dtype, np.floating):
        if not np.isfinite(masks).all():
            raise MarsDataError(f"{where}: masks hold NaN or inf")
        if not np.array_equal(masks, np.round(masks)):
            raise MarsDataError(f"{where}: masks hold non-integer values; classes must be integers 0-4")
    elif not np.issubdtype(masks.dtype, np.integer):
        raise MarsDataError(f"{where}: mask dtype {masks.dtype} is not numeric")
    if masks.size:
        values = np.unique(masks)
        bad = values[(values < 0) | (values >= NUM_CLASSES)]
        if bad.size:
            raise MarsDataError(
                f"{where}: mask values must be class ids 0-{NUM_CLASSES - 1}, found {bad.tolist()[:10]}"
            )
    return masks.astype(np.uint8)


def _check_image_stack(arr: np.ndarray, where: str) -> None:
    if arr.ndim != 3:
        raise MarsDataError(f"{where}: expected shape (N, H, W), got {arr.shape} (rank {arr.ndim})")
    if arr.shape[1] < 8 or arr.shape[2] < 8:
        raise MarsDataError(f"{where}: tiles of {arr.shape[1]}x{arr.shape[2]} pixels are too small (at least 8x8)")


def _check_ids(ids, n: int, where: str) -> np.ndarray | None:
    if ids is None:
        return None
    ids = np.asarray(ids)
    if ids.ndim != 1 or len(ids) != n:
        raise MarsDataError(f"{where}: expected {n} frame ids (shape ({n},)), got shape {ids.shape}")
    return ids.astype(str)


def arrays_from_course_layout(
    training_set: np.ndarray,
    test_set: np.ndarray | None = None,
    training_frame_ids=None,
    test_frame_ids=None,
    source: str = "<memory>",
) -> MarsArrays:
    """Validate course-layout arrays and convert them to :class:`MarsArrays`.

    Args:
        training_set: (N, 2, H, W): ``[:, 0]`` image, ``[:, 1]`` mask.
        test_set: (M, H, W) images, or None.
        training_frame_ids: optional (N,) frame ids.
        test_frame_ids: optional (M,) frame ids.
        source: file name used in error messages.
    """
    training_set = np.asarray(training_set)
    if training_set.ndim != 4 or training_set.shape[1] != 2:
        raise MarsDataError(
            f"{source}: key 'training_set' must have shape (N, 2, H, W) (image and mask per tile), got {training_set.shape}"
        )
    if len(training_set) == 0:
        raise MarsDataError(f"{source}: key 'training_set' is empty (0 tiles)")
    images = to_uint8_images(training_set[:, 0], f"{source}: key 'training_set' images")
    _check_image_stack(images, f"{source}: key 'training_set' images")
    masks = validate_masks(training_set[:, 1], f"{source}: key 'training_set' masks")
    if test_set is None:
        test = np.zeros((0,) + images.shape[1:], np.uint8)
    else:
        test = _test_images(test_set, source)
        if len(test) and test.shape[1:] != images.shape[1:]:
            raise MarsDataError(
                f"{source}: key 'test_set' tiles are {test.shape[1:]}, training tiles are {images.shape[1:]}"
            )
    return MarsArrays(
        images,
        masks,
        test,
        _check_ids(training_frame_ids, len(images), f"{source}: key 'training_frame_ids'"),
        _check_ids(test_frame_ids, len(test), f"{source}: key 'test_frame_ids'"),
        source,
    )


def _test_images(test_set, source: str) -> np.ndarray:
    """The ``test_set`` key: (M, H, W) images only, as uint8."""
    test_set = np.asarray(test_set)
    if test_set.ndim == 4 and test_set.shape[1] == 2:
        raise MarsDataError(
            f"{source}: key 'test_set' has shape {test_set.shape}: it holds masks; a test set is images only (M, H, W)"
        )
    if test_set.ndim != 3:
        raise MarsDataError(f"{source}: key 'test_set' must have shape (M, H, W), got {test_set.shape}")
    return to_uint8_images(test_set, f"{source}: key 'test_set'")


def _unlabelled_arrays(test_set, test_frame_ids=None, source: str = "<memory>") -> MarsArrays:
    """Arrays of 0 labelled tiles and the unlabelled ``test_set`` (checked as in the course layout), for uses
    that need no labels."""
    images = _test_images(test_set, source)
    if len(images) == 0:
        raise MarsDataError(f"{source}: key 'test_set' is empty (0 tiles) and there is no 'training_set'")
    _check_image_stack(images, f"{source}: key 'test_set'")
    empty = np.zeros((0,) + images.shape[1:], np.uint8)
    return MarsArrays(empty, empty.copy(), images, None,
                      _check_ids(test_frame_ids, len(images), f"{source}: key 'test_frame_ids'"), source)


def load_npz(path: str | os.PathLike, images_only: bool = False) -> MarsArrays:
    """Load a course-layout ``.npz`` (``training_set``, ``test_set``, optional frame ids).

    Args:
        images_only: also take a file of unlabelled tiles alone (``test_set`` and optional ``test_frame_ids``,
            no ``training_set``): the arrays then hold 0 labelled tiles. For uses that need no labels
            (self-supervised pretraining); training refuses such arrays.

    Raises:
        MarsDataError: missing file, not an npz archive, missing key, wrong shapes or values.
    """
    path = Path(path)
    if not path.exists():
        raise MarsDataError(f"{path}: no such file")
    if path.is_dir():
        raise MarsDataError(f"{path}: is a folder; expected an .npz file (use load_ai4mars_folder for AI4Mars folders)")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # EOFError: a 0-byte file
        raise MarsDataError(f"{path}: not a readable .npz archive ({type(err).__name__}: {err or 'empty file'})") from err
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise MarsDataError(f"{path}: holds a single array, not an .npz archive with key 'training_set'")
    with archive:
        keys = set(archive.files)
        unlabelled = images_only and "training_set" not in keys and "test_set" in keys
        if "training_set" not in keys and not unlabelled:
            also = " or, with images only, 'test_set'" if images_only else ""
            raise MarsDataError(f"{path}: missing key 'training_set'{also} (keys found: {sorted(keys)})")
        try:
            if unlabelled:
                return _unlabelled_arrays(archive["test_set"], archive["test_frame_ids"] if "test_frame_ids" in keys
                                          else None, source=str(path))
            return arrays_from_course_layout(
                archive["training_set"],
                archive["test_set"] if "test_set" in keys else None,
                archive["training_frame_ids"] if "training_frame_ids" in keys else None,
                archive["test_frame_ids"] if "test_frame_ids" in keys else None,
                source=str(path),
            )
        except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile) as err:  # truncated or corrupt members
            if isinstance(err, MarsDataError):
                raise
            raise MarsDataError(f"{path}: could not read arrays, the file is damaged ({type(err).__name__}: {err})") from err


def save_npz(arrays: MarsArrays, path: str | os.PathLike) -> None:
    """Write ``arrays`` in the course layout (write to a temporary file, then rename)."""
    path = Path(path)
    out = {
        "training_set": np.stack([arrays.train_images, arrays.train_masks], axis=1),
        "test_set": arrays.test_images,
    }
    if arrays.train_frame_ids is not None:
        out["training_frame_ids"] = arrays.train_frame_ids
    if arrays.test_frame_ids is not None:
        out["test_frame_ids"] = arrays.test_frame_ids
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **out)
