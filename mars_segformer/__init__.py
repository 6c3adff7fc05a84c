"""mars-segformer: Mars terrain segmentation with Hugging Face transformers.

Names load on first use (``lazy_loader``), so ``import mars_segformer`` and the console command
start without importing torch. The custom architectures are registered with transformers' Auto
classes when :mod:`mars_segformer.models` is imported, which any model function here does.
"""

import lazy_loader as _lazy

__version__ = "0.1.0"

__getattr__, __dir__, _names = _lazy.attach(
    __name__, submod_attrs={"models": ["PRESETS", "create_model", "make_image_processor", "processor_for"]})
__all__ = ["__version__", *_names]
