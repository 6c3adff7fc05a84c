"""The image processor saved with every model: transformers' own ``SegformerImageProcessor``.

It ships with transformers, so even custom architectures need no remote code for pre- and
post-processing, and its ``post_process_semantic_segmentation`` upsamples logits to each input's
size. Tiles are not resized (every model here accepts any size), and the normalisation is the
training path's (see ``mars_segformer.data.dataset``): the gray level repeated over RGB channels.
"""

from __future__ import annotations

from transformers import SegformerImageProcessor

from ..data.dataset import IMAGE_MEAN, IMAGE_STD


def make_image_processor(num_channels: int = 3) -> SegformerImageProcessor:
    """The processor matching :func:`mars_segformer.data.normalize`."""
    return SegformerImageProcessor(
        do_resize=False,
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[IMAGE_MEAN] * num_channels,
        image_std=[IMAGE_STD] * num_channels,
        do_reduce_labels=False,
    )
