"""Configuration of the Mars UNet family (plain, squeeze-excite, residual, attention, dual)."""

from transformers import PretrainedConfig

MARS_ID2LABEL = {0: "background", 1: "soil", 2: "bedrock", 3: "sand", 4: "big_rock"}


class MarsUNetConfig(PretrainedConfig):
    """Configuration of [`MarsUNetForSemanticSegmentation`].

    Args:
        num_channels: input channels (3: the gray tile repeated, as ``pipeline`` feeds RGB).
        base_channels: channels of the first encoder level; each level doubles them.
        depth: number of down-sampling steps.
        block_type: ``"plain"`` (two conv-BN-ReLU) or ``"residual"`` (the same with a skip connection).
        use_squeeze_excite: add a squeeze-and-excitation gate after every block.
        use_attention: gate each skip connection with an attention gate (Attention UNet).
        dual: run two UNets side by side (the second with dilated convolutions) and fuse their features.
        se_reduction: channel reduction inside the squeeze-and-excitation gate.
        dropout: dropout before the classifier.
        semantic_loss_ignore_index: label value left out of the built-in cross-entropy loss.
        initializer_range: std of the classifier's normal initialisation.
    """

    model_type = "mars_unet"

    def __init__(
        self,
        num_channels: int = 3,
        base_channels: int = 32,
        depth: int = 4,
        block_type: str = "plain",
        use_squeeze_excite: bool = False,
        use_attention: bool = False,
        dual: bool = False,
        se_reduction: int = 8,
        dropout: float = 0.1,
        semantic_loss_ignore_index: int = 255,
        initializer_range: float = 0.02,
        **kwargs,
    ):
        if block_type not in ("plain", "residual"):
            raise ValueError(f"block_type must be 'plain' or 'residual', got {block_type!r}")
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        kwargs.setdefault("id2label", dict(MARS_ID2LABEL))
        kwargs.setdefault("label2id", {v: k for k, v in kwargs["id2label"].items()})
        super().__init__(**kwargs)
        self.num_channels = num_channels
        self.base_channels = base_channels
        self.depth = depth
        self.block_type = block_type
        self.use_squeeze_excite = use_squeeze_excite
        self.use_attention = use_attention
        self.dual = dual
        self.se_reduction = se_reduction
        self.dropout = dropout
        self.semantic_loss_ignore_index = semantic_loss_ignore_index
        self.initializer_range = initializer_range
