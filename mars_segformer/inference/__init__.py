"""Inference: batched prediction, TTA, submission CSV, ONNX export."""

from .predictor import TTA_MODES, PredictError, load_model, predict_masks, predict_probs
from .submission import read_submission, write_submission

__all__ = ["TTA_MODES", "PredictError", "load_model", "predict_masks", "predict_probs", "read_submission",
           "write_submission"]
