"""``mars-segformer train`` / ``train_hf.py``: check the flags at once, then import torch and train."""

from __future__ import annotations

import sys

from .errors import RunError
from .flags import check_early


def main(argv=None) -> int:
    """Train from a command line (see :func:`.run.parse_command_line`); returns the exit code.

    What can be checked without torch is answered first (:func:`.flags.check_early`); the real parser
    and :mod:`.checks` then check everything again after the imports.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        check_early(argv)
    except RunError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from .run import main as run_main

    return run_main(argv)
