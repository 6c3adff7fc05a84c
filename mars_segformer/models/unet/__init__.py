from .configuration_mars_unet import MarsUNetConfig
from .modeling_mars_unet import MarsUNetForSemanticSegmentation, MarsUNetPreTrainedModel

__all__ = ["MarsUNetConfig", "MarsUNetForSemanticSegmentation", "MarsUNetPreTrainedModel"]
