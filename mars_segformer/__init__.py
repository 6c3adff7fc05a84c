"""mars-segformer: Mars terrain segmentation with Hugging Face transformers.

Importing the package registers its custom architectures with transformers' Auto classes.
"""

from . import models  # noqa: F401  (registers the Auto classes)
from .models import PRESETS, create_model, make_image_processor

__version__ = "0.1.0"
__all__ = ["PRESETS", "__version__", "create_model", "make_image_processor"]
