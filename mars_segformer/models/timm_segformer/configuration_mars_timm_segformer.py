"""Configuration of the SegFormer-style all-MLP decoder on a timm encoder (the reference's best model)."""

from transformers import PretrainedConfig

MARS_ID2LABEL = {0: "background", 1: "soil", 2: "bedrock", 3: "sand", 4: "big_rock"}


class MarsTimmSegformerConfig(PretrainedConfig):
    """Configuration of [`MarsTimmSegformerForSemanticSegmentation`].

    Args:
        encoder_name: any timm model that supports ``features_only`` (``regnetx_160`` in the reference).
        encoder_depth: number of encoder feature levels used (5: strides 2 to 32).
        decoder_hidden_size: channels of the all-MLP decoder.
        num_channels: input channels.
        dropout: dropout before the classifier.
        semantic_loss_ignore_index: label value left out of the built-in cross-entropy loss.
    """

    model_type = "mars_timm_segformer"

    def __init__(self, encoder_name: str = "regnetx_160", encoder_depth: int = 5, decoder_hidden_size: int = 256,
                 num_channels: int = 3, dropout: float = 0.1, semantic_loss_ignore_index: int = 255,
                 initializer_range: float = 0.02, **kwargs):
        kwargs.setdefault("id2label", dict(MARS_ID2LABEL))
        kwargs.setdefault("label2id", {v: k for k, v in kwargs["id2label"].items()})
        super().__init__(**kwargs)
        self.encoder_name = encoder_name
        self.encoder_depth = encoder_depth
        self.decoder_hidden_size = decoder_hidden_size
        self.num_channels = num_channels
        self.dropout = dropout
        self.semantic_loss_ignore_index = semantic_loss_ignore_index
        self.initializer_range = initializer_range
