"""Training: arguments, the Trainer subclass, callbacks and the job itself."""

from .arguments import DataArguments, LossArguments, MarsTrainingArguments, ModelArguments
from .run import RunError, main, parse_args, run
from .trainer import MarsTrainer, StreamingMetrics, argmax_at_label_size

__all__ = ["DataArguments", "LossArguments", "MarsTrainer", "MarsTrainingArguments", "ModelArguments", "RunError",
           "StreamingMetrics", "argmax_at_label_size", "main", "parse_args", "run"]
