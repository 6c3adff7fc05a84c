from .configuration_mars_timm_unet import MarsTimmUNetConfig
from .modeling_mars_timm_unet import MarsTimmUNetForSemanticSegmentation

__all__ = ["MarsTimmUNetConfig", "MarsTimmUNetForSemanticSegmentation"]
