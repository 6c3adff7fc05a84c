"""Configuration of DeepLabV3+ on a timm encoder."""

from transformers import PretrainedConfig

MARS_ID2LABEL = {0: "background", 1: "soil", 2: "bedrock", 3: "sand", 4: "big_rock"}


class MarsDeepLabV3PlusConfig(PretrainedConfig):
    """Configuration of [`MarsDeepLabV3PlusForSemanticSegmentation`].

    Args:
        encoder_name: any timm model supporting ``features_only`` and ``output_stride``.
        encoder_depth: encoder levels used; the deepest feeds ASPP.
        output_stride: 16 dilates the last stage instead of striding (DeepLabV3+'s default).
        atrous_rates: ASPP dilation rates; small, since a 64x128 tile is only 4x8 cells at stride 16.
        decoder_channels: ASPP and decoder width.
        low_level_channels: projection width of the stride-4 skip features.
    """

    model_type = "mars_deeplabv3plus"

    def __init__(self, encoder_name: str = "resnet34", encoder_depth: int = 5, output_stride: int = 16,
                 atrous_rates: tuple = (1, 2, 3), decoder_channels: int = 256, low_level_channels: int = 48,
                 num_channels: int = 3, dropout: float = 0.1, semantic_loss_ignore_index: int = 255,
                 initializer_range: float = 0.02, **kwargs):
        kwargs.setdefault("id2label", dict(MARS_ID2LABEL))
        kwargs.setdefault("label2id", {v: k for k, v in kwargs["id2label"].items()})
        super().__init__(**kwargs)
        self.encoder_name = encoder_name
        self.encoder_depth = encoder_depth
        self.output_stride = output_stride
        self.atrous_rates = list(atrous_rates)
        self.decoder_channels = decoder_channels
        self.low_level_channels = low_level_channels
        self.num_channels = num_channels
        self.dropout = dropout
        self.semantic_loss_ignore_index = semantic_loss_ignore_index
        self.initializer_range = initializer_range
