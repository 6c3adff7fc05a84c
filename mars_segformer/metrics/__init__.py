"""Metrics: the streaming mean-IoU (also an ``evaluate`` module loadable by path), and per-instance scores of a
class by object size (``metrics.instances``)."""

from pathlib import Path

from .mean_iou.confusion import StreamingMeanIoU, confusion_matrix, scores_from_confusion

#: ``evaluate.load(MEAN_IOU_PATH)`` loads the module offline.
MEAN_IOU_PATH = str(Path(__file__).parent / "mean_iou")

__all__ = ["MEAN_IOU_PATH", "StreamingMeanIoU", "confusion_matrix", "scores_from_confusion"]
