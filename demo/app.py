"""Mars terrain segmentation demo, Space-ready: this file is the Space's ``app_file``.

    MARS_MODEL=user/mars-upernet python demo/app.py           # a Hub repo id or a run folder
    MARS_MODEL=runs/mars-segformer python demo/app.py --port 7860

The app itself is ``mars_segformer.demo`` (also ``mars-segformer demo``); see README.md beside this file.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing the package

from mars_segformer.demo import EXAMPLES, build, main  # noqa: E402

__all__ = ["EXAMPLES", "build", "main"]

if __name__ == "__main__":
    sys.exit(main())
