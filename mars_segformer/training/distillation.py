"""Distillation: the student learns the mean class probabilities of trained teachers beside the hard labels.

Several full-length runs of one split, their probabilities averaged, score above each of them (seed 0's four:
0.682, big rock 0.295, against 0.662-0.668 alone; docs/results.md, "Several runs averaged"). ``--teachers`` names
such runs; at the start of training their mean probabilities of every training tile are computed once, tile by
tile as the metric predicts, and kept as uint8 (1/255: 5 classes x 8,192 pixels = 40 KB a tile). The training
reads carry them moved, zoomed and flipped with their pixels (``data/dataset.py``), and the loss adds
``--distill_weight`` x the cross-entropy of the student's softmax against them (``losses/soft_ce.py``).

``--teacher_view frame`` lets the teachers see more than the tile: each complete training frame (``data/frame_shift.py``'s
joinable frames: all 8 tiles in training, joined in the shared file's layout) is predicted whole and its
probabilities cut back into its tiles; the other tiles are predicted one by one. A tile-trained model predicts
frames whole far better than tile by tile (the complete validation frames of two full-length UperNet-R18 runs:
task mIoU 0.711 / 0.718 against 0.649 / 0.647; docs/results.md, "Context beyond the tile"): a rock cut by the tile's edge is seen whole, and the student,
which reads tiles and shifted windows, is taught what the frame around them showed.

Leakage guard: a teacher must have been trained on this run's split. Its ``split.json`` is checked against the
split being built, so no teacher has seen a validation tile.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..data import CLASS_NAMES, MarsDataError
from ..data.ai4mars import cut_tiles, join_tiles
from ..data.frame_shift import TILES_PER_FRAME, joinable_frames
from ..data.split import SPLIT_FILE, check_split
from .errors import RunError
from .pseudo_labels import check_teacher_labels
from .ranges import TEACHER_VIEWS


def teacher_list(text: str | None) -> list[str]:
    """``--teachers`` as a list of folders (comma-separated; empty or None: no distillation)."""
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def teacher_split_file(teacher: str) -> Path:
    """The ``split.json`` of a teacher run folder, or of the run folder above a teacher checkpoint."""
    folder = Path(teacher)
    return folder / SPLIT_FILE if (folder / SPLIT_FILE).is_file() else folder.parent / SPLIT_FILE


def check_teacher_folders(teachers: list[str]) -> None:
    """Raise :class:`RunError` for a teacher that is not a trained run folder (or checkpoint) with its split."""
    for t in teachers:
        if not (Path(t) / "config.json").is_file() or not teacher_split_file(t).is_file():
            raise RunError(f"--teachers {t}: expected a trained run folder (or a checkpoint in one) with config.json "
                           f"and the run's {SPLIT_FILE}")


def _load_teacher(teacher: str, arrays, val_rows: np.ndarray):
    """The teacher's model, once its split is this run's (else :class:`MarsDataError`)."""
    from ..inference import load_model

    path = teacher_split_file(teacher)
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise MarsDataError(f"--teachers {teacher}: {path} is not a split record ({err})") from None
    try:
        check_split(record, arrays, val_rows, f"--teachers {teacher}")
    except MarsDataError:
        raise MarsDataError(f"--teachers {teacher}: trained on another split (seed {record.get('seed')}, "
                            f"{record.get('validation_tiles')} validation tiles of {record.get('data')}); a teacher "
                            "must have been trained on this run's split (the same --seed, --val_fraction and data), "
                            "or it has seen validation tiles") from None
    model = load_model(teacher)  # on the GPU when there is one
    check_teacher_labels(model, f"--teachers {teacher}")
    return model


def _mean_probs(models, images: np.ndarray) -> np.ndarray:
    """(B, H, W) uint8 images -> (B, K, H, W) uint8: the models' mean class probabilities in 1/255."""
    import torch

    from ..inference.predictor import predict_probs

    with torch.no_grad():
        mean = sum(predict_probs(m, images) for m in models) / len(models)
    return torch.round(mean.clamp(0, 1) * 255).to(torch.uint8).cpu().numpy()


def _frame_soft_labels(models, images: np.ndarray, frames: np.ndarray, out: np.ndarray, progress: bool) -> None:
    """Fill ``out`` at the tiles of ``frames`` ((F, 8) rows) with the mean probabilities of each frame seen whole."""
    from tqdm.auto import tqdm

    batch = 8  # frames of 256 x 256: the pixels of 64 tiles
    for i in tqdm(range(0, len(frames), batch), desc=f"whole frames, {len(models)} teacher(s)", unit="batch",
                  disable=not progress):
        chunk = frames[i:i + batch]  # (b, 8) rows
        probs = _mean_probs(models, join_tiles(images[chunk.ravel()]))  # (b, K, 256, 256)
        # each class's frames cut into the file's tiles: (K, b * 8, H, W) -> (b * 8, K, H, W)
        out[chunk.ravel()] = np.stack([cut_tiles(probs[:, k]) for k in range(probs.shape[1])], axis=1)


def check_view(view: str) -> None:
    """Raise ValueError for a teacher view outside :data:`TEACHER_VIEWS`."""
    if view not in TEACHER_VIEWS:
        raise ValueError(f"teacher view must be one of {TEACHER_VIEWS}, got {view!r}")


def view_frames(images: np.ndarray, frame_ids, rows: np.ndarray, view: str) -> np.ndarray:
    """(F, TILES_PER_FRAME) rows of the frames of ``rows`` that ``view`` predicts whole: the joinable frames for
    ``frame``, none for ``tile``."""
    if view == "frame":
        return joinable_frames(images, frame_ids, rows)[0]
    return np.zeros((0, TILES_PER_FRAME), np.int64)


def fill_soft_labels(models, images: np.ndarray, rows: np.ndarray, frames: np.ndarray, out: np.ndarray,
                     batch_size: int = 128, progress: bool = True) -> None:
    """Write the models' mean class probabilities of ``rows`` into ``out`` ((N, K, H, W) uint8, in 1/255).

    Args:
        models: models in eval mode (their train/eval mode is not changed).
        images: (N, H, W) uint8 tiles.
        rows: the rows to fill.
        frames: (F, 8) rows of frames among ``rows`` to predict whole (:func:`view_frames`); the rest tile by tile.
        out: filled in place at ``rows``.
        batch_size: tiles per forward pass.
        progress: show progress bars.
    """
    from tqdm.auto import tqdm

    _frame_soft_labels(models, images, frames, out, progress)
    rows = np.setdiff1d(np.asarray(rows), frames.ravel())  # sorted
    for i in tqdm(range(0, len(rows), batch_size), desc=f"probabilities of {len(models)} teacher(s)",
                  unit="batch", disable=not progress):
        chunk = rows[i:i + batch_size]
        out[chunk] = _mean_probs(models, images[chunk])


def teacher_soft_labels(teachers: list[str], batch_size: int = 128, progress: bool = True, view: str = "tile"):
    """The ``soft_labels`` callable of :func:`..data.build_dataset_dict`: the teachers' mean class probabilities
    of the training rows, (N, K, H, W) uint8 in 1/255 (rows outside training stay 0).

    Args:
        teachers: run folders (or checkpoints) trained on the run's split.
        batch_size: tiles per forward pass.
        progress: show progress bars.
        view: one of :data:`TEACHER_VIEWS`: ``frame`` predicts complete training frames whole.
    """
    check_view(view)

    def soft_labels(arrays, train_rows, val_rows) -> np.ndarray:
        models = [_load_teacher(t, arrays, val_rows) for t in teachers]
        images = arrays.train_images
        out = np.zeros((len(images), len(CLASS_NAMES), *images.shape[1:]), np.uint8)
        frames = view_frames(images, arrays.train_frame_ids, train_rows, view)
        fill_soft_labels(models, images, train_rows, frames, out, batch_size, progress)
        return out

    return soft_labels


class SelfTeacher:
    """Online self-distillation (``--self_distill``): the run's own (averaged) weights are its teacher.

    Its :meth:`soft_labels` is the ``soft_labels`` callable of :func:`..data.build_dataset_dict`: an array of
    zeros (a pixel with all-zero probabilities adds nothing to the soft cross-entropy) in shared memory, so that
    DataLoader workers, forked or persistent, read what :meth:`refresh` writes into it later in training
    (``callbacks.SelfDistillationCallback``: at the start of each epoch from a share of the steps on).

    Args:
        view: one of :data:`TEACHER_VIEWS`.
        progress: show progress bars.
    """

    def __init__(self, view: str = "frame", progress: bool = True):
        check_view(view)
        self.view, self.progress = view, progress
        #: how many times the soft labels were computed in this process (a resumed run counts from 0 again)
        self.refreshes = 0
        self._tensor = self._images = self._rows = self._frames = None

    def soft_labels(self, arrays, train_rows, val_rows) -> np.ndarray:
        import torch

        self._images, self._rows = arrays.train_images, train_rows
        # the frames are found once (seam checks included), not at every refresh
        self._frames = view_frames(self._images, arrays.train_frame_ids, train_rows, self.view)
        shape = (len(self._images), len(CLASS_NAMES), *self._images.shape[1:])
        self._tensor = torch.zeros(shape, dtype=torch.uint8).share_memory_()
        return self._tensor.numpy()

    def refresh(self, model) -> None:
        """``model``'s class probabilities (as it is now, in eval mode) of every training row, in place."""
        if self._tensor is None:
            raise RuntimeError("SelfTeacher.refresh before its soft_labels were built")
        fill_soft_labels([model], self._images, self._rows, self._frames, self._tensor.numpy(),
                         progress=self.progress)
        self.refreshes += 1
