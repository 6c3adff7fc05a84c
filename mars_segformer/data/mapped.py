"""Tile files larger than memory: their arrays memory-mapped from an uncompressed copy on disk.

An ``.npz`` member cannot be memory-mapped (it is a zip entry, often compressed), and ``np.load``
reads it whole. Above a size (:func:`map_threshold`: half the memory available, or
``MARS_SEGFORMER_MAP_ABOVE_MB``) :func:`load_npz_mapped` instead streams each member once, a chunk
of tiles at a time, into uint8 ``.npy`` files of a cache folder (``MARS_SEGFORMER_CACHE``, default
``~/.cache/mars-segformer/mapped``): images and masks apart, each tile's pixels contiguous, checked and
converted as :func:`~.io.arrays_from_course_layout` does. The arrays are ``np.memmap``\\ s of those
files; the ``datasets`` tables view them without a copy (``dataset.tiles_to_dataset``) and every
whole-file pass reads them in chunks (``data/chunks.py``), so the operating system pages tiles in as
batches read them. A cache is reused while the source file's size and modification time are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np

from .chunks import CHUNK_TILES
from .errors import MarsDataError
from .io import MarsArrays, _check_ids, _check_image_stack, to_uint8_images, validate_masks

MAP_ENV = "MARS_SEGFORMER_MAP_ABOVE_MB"
CACHE_ENV = "MARS_SEGFORMER_CACHE"
#: what a complete cache folder holds besides its arrays
DONE = "source.json"


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable``), or 8 GiB where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 8 << 30


def map_threshold() -> int:
    """Arrays larger than this many bytes are memory-mapped: ``MARS_SEGFORMER_MAP_ABOVE_MB`` (MiB), else half
    the memory available."""
    value = os.environ.get(MAP_ENV)
    if value:
        try:
            return int(float(value) * (1 << 20))
        except ValueError:
            raise MarsDataError(f"{MAP_ENV}={value!r}: expected a size in MiB") from None
    return available_memory() // 2


def npz_array_bytes(path: str | os.PathLike) -> int:
    """The uncompressed size of an ``.npz``'s members, read from its zip directory (no array is read);
    0 for a file that is not a zip archive (the ordinary loader then says what is wrong)."""
    try:
        with zipfile.ZipFile(path) as z:
            return sum(i.file_size for i in z.infolist())
    except (OSError, zipfile.BadZipFile):
        return 0


def should_map(path: str | os.PathLike) -> bool:
    return Path(path).suffix == ".npz" and npz_array_bytes(path) > map_threshold()


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "mars-segformer") / "mapped"


def _stamp(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _member_header(z: zipfile.ZipFile, name: str):
    """(open member stream positioned at the data, shape, dtype) of an ``.npy`` member."""
    f = z.open(name)
    version = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(f)
    if fortran or dtype.hasobject:
        f.close()
        raise MarsDataError(f"key {name[:-4]!r}: a {'Fortran-ordered' if fortran else 'object'} array cannot be "
                            "memory-mapped; save it as a C-ordered numeric array")
    return f, tuple(shape), dtype


def _chunks(f, shape, dtype):
    """Consecutive blocks of at most CHUNK_TILES rows of an ``.npy`` member stream."""
    row = int(np.prod(shape[1:])) * dtype.itemsize
    for lo in range(0, shape[0], CHUNK_TILES):
        n = min(CHUNK_TILES, shape[0] - lo)
        data = f.read(n * row)
        if len(data) != n * row:
            raise MarsDataError(f"the file is damaged: an array ends after {lo * row + len(data)} of "
                                f"{shape[0] * row} bytes")
        yield lo, np.frombuffer(data, dtype).reshape((n, *shape[1:]))


def _image_range(z, name) -> tuple[float, float] | None:
    """Global (min, max) of a non-uint8 image member, for the same uint8 conversion as the in-memory loader."""
    f, shape, dtype = _member_header(z, name)
    if dtype == np.uint8:
        f.close()
        return None
    lo, hi = np.inf, -np.inf
    with f:
        for _, block in _chunks(f, shape, dtype):
            images = block[:, 0] if name == "training_set.npy" else block
            if images.size:
                lo, hi = min(lo, float(np.min(images))), max(hi, float(np.max(images)))
    return lo, hi


def _extract(path: Path, folder: Path) -> None:
    """Stream ``path``'s arrays into uint8 ``.npy`` files of ``folder`` (written whole, then renamed in)."""
    tmp = folder.with_name(folder.name + f".{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            if "training_set.npy" not in names:
                raise MarsDataError(f"{path}: missing key 'training_set' (keys found: "
                                    f"{sorted(n[:-4] for n in names)})")
            _extract_training(z, path, tmp)
            _extract_test(z, path, tmp, "test_set.npy" in names, np.load(tmp / "train_images.npy", mmap_mode="r").shape[1:])
            for key in ("training_frame_ids", "test_frame_ids"):
                if f"{key}.npy" in names:
                    with z.open(f"{key}.npy") as f:
                        np.save(tmp / f"{key}.npy", np.load(f, allow_pickle=False).astype(str))
        (tmp / DONE).write_text(json.dumps(_stamp(path)))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _extract_training(z, path: Path, tmp: Path) -> None:
    where = f"{path}: key 'training_set'"
    value_range = _image_range(z, "training_set.npy")
    f, shape, dtype = _member_header(z, "training_set.npy")
    if len(shape) != 4 or shape[1] != 2:
        raise MarsDataError(f"{where} must have shape (N, 2, H, W) (image and mask per tile), got {shape}")
    if shape[0] == 0:
        raise MarsDataError(f"{where} is empty (0 tiles)")
    _check_image_stack(np.empty((0, *shape[2:])), where)
    images = np.lib.format.open_memmap(tmp / "train_images.npy", "w+", np.uint8, (shape[0], *shape[2:]))
    masks = np.lib.format.open_memmap(tmp / "train_masks.npy", "w+", np.uint8, (shape[0], *shape[2:]))
    with f:
        for lo, block in _chunks(f, shape, dtype):
            images[lo:lo + len(block)] = to_uint8_images(block[:, 0], where, value_range)
            masks[lo:lo + len(block)] = validate_masks(block[:, 1], f"{where} masks")
    images.flush()
    masks.flush()
    del images, masks


def _extract_test(z, path: Path, tmp: Path, present: bool, tile_shape: tuple[int, int]) -> None:
    where = f"{path}: key 'test_set'"
    if not present:  # no unlabelled tiles: an empty stack of the training tiles' shape
        np.save(tmp / "test_images.npy", np.zeros((0, *tile_shape), np.uint8))
        return
    value_range = _image_range(z, "test_set.npy")
    f, shape, dtype = _member_header(z, "test_set.npy")
    _check_image_stack(np.empty((0, *shape[1:])) if len(shape) == 3 else np.empty(shape), where)
    out = np.lib.format.open_memmap(tmp / "test_images.npy", "w+", np.uint8, shape)
    with f:
        for lo, block in _chunks(f, shape, dtype):
            out[lo:lo + len(block)] = to_uint8_images(block, where, value_range)
    out.flush()
    del out


def load_npz_mapped(path: str | os.PathLike) -> MarsArrays:
    """A course-layout ``.npz`` as :class:`MarsArrays` of memory-mapped uint8 arrays (see the module docstring).

    Raises:
        MarsDataError: what :func:`~.io.load_npz` would refuse, or an array that cannot be mapped.
    """
    path = Path(path)
    if not path.is_file():
        raise MarsDataError(f"{path}: no such file")
    key = hashlib.blake2b(str(path.resolve()).encode(), digest_size=8).hexdigest()
    folder = cache_root() / f"{path.stem}-{key}"
    done = folder / DONE
    if not (done.is_file() and json.loads(done.read_text()) == _stamp(path)):
        try:
            _extract(path, folder)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            if isinstance(err, MarsDataError):
                raise MarsDataError(str(err) if str(err).startswith(str(path)) else f"{path}: {err}") from None
            raise MarsDataError(f"{path}: could not be mapped ({type(err).__name__}: {err})") from err
    images = np.load(folder / "train_images.npy", mmap_mode="r")
    ids = [np.load(folder / f"{k}.npy") if (folder / f"{k}.npy").is_file() else None
           for k in ("training_frame_ids", "test_frame_ids")]
    test = np.load(folder / "test_images.npy", mmap_mode="r")
    if test.shape[1:] != images.shape[1:] and len(test):
        raise MarsDataError(f"{path}: test tiles are {test.shape[1:]}, training tiles {images.shape[1:]}")
    return MarsArrays(images, np.load(folder / "train_masks.npy", mmap_mode="r"), test,
                      _check_ids(ids[0], len(images), f"{path}: key 'training_frame_ids'"),
                      _check_ids(ids[1], len(test), f"{path}: key 'test_frame_ids'"),
                      str(path), {"mapped": str(folder)})


def subset_mapped(arrays: MarsArrays, keep: np.ndarray) -> MarsArrays:
    """The training tiles ``keep`` of memory-mapped ``arrays`` (e.g. without outliers), copied a chunk at a
    time into a folder beside their cache and mapped from there: a fancy index would read them all into
    memory. Reused while the cache it came from is unchanged."""
    keep = np.asarray(keep, np.int64)
    parent = Path(arrays.meta["mapped"])
    digest = hashlib.blake2b(keep.tobytes(), digest_size=8).hexdigest()
    folder = parent.with_name(f"{parent.name}-subset-{digest}")
    stamp = {"parent": str(parent), "parent_done": (parent / DONE).read_text(), "tiles": int(len(keep))}
    done = folder / DONE
    if not (done.is_file() and json.loads(done.read_text()) == stamp):
        tmp = folder.with_name(folder.name + f".{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            for name, source in (("train_images", arrays.train_images), ("train_masks", arrays.train_masks)):
                out = np.lib.format.open_memmap(tmp / f"{name}.npy", "w+", np.uint8, (len(keep), *source.shape[1:]))
                for lo in range(0, len(keep), CHUNK_TILES):
                    out[lo:lo + CHUNK_TILES] = source[keep[lo:lo + CHUNK_TILES]]
                out.flush()
                del out
            (tmp / DONE).write_text(json.dumps(stamp))
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    ids = None if arrays.train_frame_ids is None else arrays.train_frame_ids[keep]
    return MarsArrays(np.load(folder / "train_images.npy", mmap_mode="r"), np.load(folder / "train_masks.npy", mmap_mode="r"),
                      arrays.test_images, ids, arrays.test_frame_ids, arrays.source, {**arrays.meta, "mapped": str(folder)})
