"""The confusion matrix behind every mean-IoU score here: numpy only, so that training and prediction count
IoU without importing ``evaluate`` (about a second of every start-up); ``mean_iou.py`` wraps it as the
``evaluate`` module, and ``evaluate.load`` copies this file beside it (a local import)."""

from __future__ import annotations

import numpy as np


def confusion_matrix(predictions, references, num_labels: int, ignore_index: int | None = None) -> np.ndarray:
    """(num_labels, num_labels) counts, rows truth, columns prediction; ignored and out-of-range labels skipped."""
    pred = np.asarray(predictions).ravel().astype(np.int64)
    ref = np.asarray(references).ravel().astype(np.int64)
    keep = _counted(pred, ref, num_labels, ignore_index)
    return np.bincount(ref[keep] * num_labels + pred[keep], minlength=num_labels**2).reshape(num_labels, num_labels)


def _counted(pred, ref, num_labels: int, ignore_index: int | None):
    """Which pixels of two flat label arrays (numpy or torch alike) count: both in range, truth not ignored."""
    if pred.shape != ref.shape:
        raise ValueError(f"predictions ({pred.shape[0]} pixels) and references ({ref.shape[0]} pixels) differ in size")
    keep = (ref >= 0) & (ref < num_labels) & (pred >= 0) & (pred < num_labels)
    if ignore_index is not None:
        keep &= ref != ignore_index
    return keep


def scores_from_confusion(cm: np.ndarray, ignore_index: int | None = None, nan_to_num: float | None = None,
                          task_classes=None) -> dict:
    """Every output of the module from one confusion matrix."""
    cm = np.asarray(cm, dtype=np.float64)
    k = len(cm)
    inter = np.diag(cm)
    area_label = cm.sum(axis=1)
    area_pred = cm.sum(axis=0)
    union = area_label + area_pred - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, np.nan)
        acc = np.where(area_label > 0, inter / area_label, np.nan)
    if task_classes is None:
        task_classes = [c for c in range(k) if c != ignore_index]
    task = iou[list(task_classes)]
    out = {
        "mean_iou": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
        "mean_accuracy": float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan"),
        "overall_accuracy": float(inter.sum() / area_label.sum()) if area_label.sum() else float("nan"),
        "task_mean_iou": float(np.nanmean(task)) if np.isfinite(task).any() else float("nan"),
        "per_category_iou": iou,
        "per_category_accuracy": acc,
        "confusion_matrix": cm.astype(np.int64),
    }
    if nan_to_num is not None:
        out["per_category_iou"] = np.nan_to_num(iou, nan=nan_to_num)
        out["per_category_accuracy"] = np.nan_to_num(acc, nan=nan_to_num)
    return out


def _tensor_counts(predictions, references, num_labels: int, ignore_index: int | None):
    """:func:`confusion_matrix` of two torch tensors, computed where they are (with tensor methods alone, so
    that this module imports no torch): on a GPU nothing is read back until the counts are."""
    k = num_labels
    pred, ref = predictions.reshape(-1).long(), references.reshape(-1).long()
    keep = _counted(pred, ref, k, ignore_index)
    return (ref * k + pred).masked_fill(~keep, k * k).bincount(minlength=k * k + 1)[: k * k].reshape(k, k)


class StreamingMeanIoU:
    """Running confusion matrix; ``update`` per batch, ``compute`` at the end. Accepts numpy or torch; torch
    tensors (both on one device) are counted on their device and read back once, at ``compute``.

    Args:
        num_labels: number of classes.
        ignore_index: label value left out.
    """

    def __init__(self, num_labels: int, ignore_index: int | None = 0):
        self.num_labels, self.ignore_index = num_labels, ignore_index
        self.reset()

    def reset(self) -> None:
        self._matrix = np.zeros((self.num_labels, self.num_labels), np.int64)
        #: counts of tensor batches, kept on their device until read
        self._pending = None

    @property
    def matrix(self) -> np.ndarray:
        """(num_labels, num_labels) counts so far, rows truth, columns prediction."""
        if self._pending is not None:
            self._matrix += self._pending.cpu().numpy()
            self._pending = None
        return self._matrix

    def update(self, predictions, references) -> None:
        both = hasattr(predictions, "detach") and hasattr(references, "detach")
        if both and predictions.device == references.device:
            counts = _tensor_counts(predictions.detach(), references.detach(), self.num_labels, self.ignore_index)
            self._pending = counts if self._pending is None else self._pending + counts
            return
        if hasattr(predictions, "detach"):
            predictions = predictions.detach().cpu().numpy()
        if hasattr(references, "detach"):
            references = references.detach().cpu().numpy()
        self._matrix += confusion_matrix(predictions, references, self.num_labels, self.ignore_index)

    def compute(self, nan_to_num: float | None = None) -> dict:
        return scores_from_confusion(self.matrix, self.ignore_index, nan_to_num)
