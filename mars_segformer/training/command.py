"""``mars-segformer train`` / ``train_hf.py``: check the flags at once, then import torch and train."""

from __future__ import annotations

import sys

from .errors import RunError
from .flags import check_names, check_paths, check_quick_values, expand_config, precheck


def main(argv=None) -> int:
    """Train from a command line (see :func:`.run.parse_command_line`); returns the exit code.

    Unknown flags, untyped values and bad config keys are answered before torch is imported
    (:func:`.flags.precheck`); everything else is checked by the real parser and :mod:`.checks`.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        flat = expand_config(argv)
        precheck(flat)
        check_paths(flat)
        check_quick_values(flat)
        check_names(flat)
    except RunError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from .run import main as run_main

    return run_main(argv)
