"""Model zoo: SegFormer presets and custom architectures, all ``PreTrainedModel``s."""

from .image_processing import make_image_processor, processor_for
from .registry import (
           CUSTOM_MODELS,
           NATIVE_PRESETS,
           PRESETS,
           TINY_OVERRIDES,
           create_model,
           register_auto_classes,
)
from .segformer import segformer_config
from .upernet import upernet_config

register_auto_classes()

__all__ = ["CUSTOM_MODELS", "NATIVE_PRESETS", "PRESETS", "TINY_OVERRIDES", "create_model", "make_image_processor",
           "processor_for", "register_auto_classes", "segformer_config", "upernet_config"]
