"""Inference: batched prediction, TTA, submission CSV, ONNX export (names load on first use)."""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submod_attrs={
    "options": ["CONTEXTS", "TTA_MODES", "PredictError", "check_context", "check_scales"],
    "predictor": ["class_ids", "load_model", "predict_masks", "predict_probs", "tile_logits"],
    "submission": ["read_submission", "write_submission"],
    "tile_context": ["predict_masks_in_context"],
})
