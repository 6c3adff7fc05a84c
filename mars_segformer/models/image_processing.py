"""The image processor saved with every model: transformers' own ``SegformerImageProcessor``.

It ships with transformers, so even custom architectures need no remote code for pre- and
post-processing, and its ``post_process_semantic_segmentation`` upsamples logits to each input's
size. Tiles are not resized (every model here accepts any size) unless the model was trained on
upscaled tiles (``--input_scale``), and the normalisation is the
training path's (see ``mars_segformer.data.dataset``): the gray level repeated over RGB channels.
"""

from __future__ import annotations

from transformers import SegformerImageProcessor
from transformers.image_utils import PILImageResampling

from ..data.dataset import IMAGE_MEAN, IMAGE_STD, config_scale, scaled_shape
from ..data.io import TILE_SHAPE


def make_image_processor(num_channels: int = 3, input_size: tuple[int, int] | None = None, image_mean=None,
                         image_std=None) -> SegformerImageProcessor:
    """The processor matching :func:`mars_segformer.data.normalize`.

    Args:
        num_channels: channels the model takes (the gray level repeated).
        input_size: (height, width) the model was trained at when tiles were resized before it
            (``--input_scale``): the processor then resizes every image to that size with PIL's bilinear
            filter, as training did, and ``pipeline`` returns masks at the image's own size.
        image_mean, image_std: per-channel normalisation of a pretrained backbone (default: the Mars
            gray level's, repeated over the channels).
    """
    return SegformerImageProcessor(
        do_resize=input_size is not None,
        size=None if input_size is None else {"height": int(input_size[0]), "width": int(input_size[1])},
        resample=PILImageResampling.BILINEAR,
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=list(image_mean) if image_mean is not None else [IMAGE_MEAN] * num_channels,
        image_std=list(image_std) if image_std is not None else [IMAGE_STD] * num_channels,
        do_reduce_labels=False,
    )


def processor_for(config, tile_shape: tuple[int, int] = TILE_SHAPE) -> SegformerImageProcessor:
    """The processor of a model ``config`` (what :func:`mars_segformer.data.model_pixels` does to a tile):
    tiles of ``tile_shape`` resized by its ``input_scale``, its normalisation (``image_mean`` / ``image_std``
    where a pretrained backbone set them)."""
    scale = config_scale(config)
    size = None if scale == 1 else scaled_shape(tile_shape, scale)
    return make_image_processor(getattr(config, "num_channels", 3), size, getattr(config, "image_mean", None),
                                getattr(config, "image_std", None))
