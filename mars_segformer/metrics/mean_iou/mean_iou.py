"""Mean IoU for semantic segmentation, streaming, as an ``evaluate`` module that loads offline.

Same inputs and outputs as evaluate's ``mean_iou`` (``mean_iou``, ``mean_accuracy``,
``overall_accuracy``, ``per_category_iou``, ``per_category_accuracy``), plus ``task_mean_iou``:
the Mars task score, mean IoU over classes 1-4 with background-labelled pixels ignored. evaluate's
``mean_iou`` with ``ignore_index=0`` still averages all five classes and counts background (never
a label, sometimes a prediction) as IoU 0, so its ``mean_iou`` is lower than the task score.

Everything is computed from a running confusion matrix, so memory does not grow with the number of
images. The folder is self-contained: ``evaluate.load(path_to_this_folder)`` works without the
``mars_segformer`` package and without network access (``evaluate`` copies ``confusion.py``, which holds
the counting, beside this file).
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

from .confusion import confusion_matrix, scores_from_confusion

_CITATION = """@inproceedings{swan2021ai4mars,
  title={AI4MARS: A Dataset for Terrain-Aware Autonomous Driving on Mars},
  author={Swan, R. Michael and Atha, Deegan and Leopold, Henry A. and Gildner, Matthew and Oij, Stephanie and Chiu, Cindy and Ono, Masahiro},
  booktitle={CVPR Workshops}, year={2021}}"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of (H, W) integer label maps.
    references: list of (H, W) integer ground-truth maps.
    num_labels: number of classes.
    ignore_index: label value whose pixels are left out (0 for the Mars background).
    nan_to_num: replace NaN (class absent from both) in the per-category outputs with this value.
    task_classes: classes averaged by ``task_mean_iou`` (default: all but ``ignore_index``).
Returns:
    mean_iou, mean_accuracy, overall_accuracy, per_category_iou, per_category_accuracy, task_mean_iou,
    confusion_matrix (rows: truth, columns: prediction).
"""


@evaluate.utils.file_utils.add_start_docstrings(__doc__, _KWARGS_DESCRIPTION)
class MeanIoU(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Sequence(datasets.Value("uint16"))),
                    "references": datasets.Sequence(datasets.Sequence(datasets.Value("uint16"))),
                }
            ),
        )

    def _compute(self, predictions, references, num_labels: int, ignore_index: int | None = None,
                 nan_to_num: float | None = None, task_classes=None):
        cm = np.zeros((num_labels, num_labels), np.int64)
        for p, r in zip(predictions, references, strict=True):
            cm += confusion_matrix(p, r, num_labels, ignore_index)
        return scores_from_confusion(cm, ignore_index, nan_to_num, task_classes)
