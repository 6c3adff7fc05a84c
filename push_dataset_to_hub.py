"""Publish a tile file as a Hub dataset (train / validation / test by frame, Image features) with a card.

    python push_dataset_to_hub.py ../shared/data/ai4mars_msl_64x128.npz --repo_id user/ai4mars-msl-tiles
    python push_dataset_to_hub.py --repo_id user/x --dry_run          # the embedded sample; print the card
    python train_hf.py --data user/ai4mars-msl-tiles                  # then train on it

The token comes from HF_TOKEN or the saved login (`hf auth login`).
"""

import sys

from mars_segformer.hub.cli import push_dataset_main as main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
