"""Training: arguments, the Trainer subclass, callbacks and the job itself (names load on first use).

``main`` checks the command line against the flag table (:mod:`.flags`) before torch and
transformers are imported, so a wrong flag is answered at once.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submod_attrs={
    "arguments": ["DataArguments", "LossArguments", "MarsTrainingArguments", "ModelArguments"],
    "command": ["main"],
    "errors": ["RunError"],
    "run": ["parse_args"],
    "trainer": ["MarsTrainer", "StreamingMetrics", "argmax_at_label_size"],
})
