"""``python -m mars_segformer COMMAND ...`` is the ``mars-segformer`` command."""

import sys

from .cli import main

sys.exit(main())
