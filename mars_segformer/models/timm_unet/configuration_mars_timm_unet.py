"""Configuration of a UNet decoder on a timm encoder (the report's "UNet ResNet34")."""

from transformers import PretrainedConfig

MARS_ID2LABEL = {0: "background", 1: "soil", 2: "bedrock", 3: "sand", 4: "big_rock"}


class MarsTimmUNetConfig(PretrainedConfig):
    """Configuration of [`MarsTimmUNetForSemanticSegmentation`].

    Args:
        encoder_name: any timm model supporting ``features_only``.
        encoder_depth: encoder levels used as skips.
        decoder_channels: widths of the decoder stages, deepest first; one per encoder level.
    """

    model_type = "mars_timm_unet"

    def __init__(self, encoder_name: str = "resnet34", encoder_depth: int = 5,
                 decoder_channels: tuple = (256, 128, 64, 32, 16), num_channels: int = 3, dropout: float = 0.1,
                 semantic_loss_ignore_index: int = 255, initializer_range: float = 0.02, **kwargs):
        if len(decoder_channels) != encoder_depth:
            raise ValueError(f"decoder_channels needs {encoder_depth} entries (one per level), got {len(decoder_channels)}")
        kwargs.setdefault("id2label", dict(MARS_ID2LABEL))
        kwargs.setdefault("label2id", {v: k for k, v in kwargs["id2label"].items()})
        super().__init__(**kwargs)
        self.encoder_name = encoder_name
        self.encoder_depth = encoder_depth
        self.decoder_channels = list(decoder_channels)
        self.num_channels = num_channels
        self.dropout = dropout
        self.semantic_loss_ignore_index = semantic_loss_ignore_index
        self.initializer_range = initializer_range
