"""Publish a trained run folder to the Hugging Face Hub with its model card.

    python push_to_hub.py runs/mars-segformer --repo_id user/mars-segformer-b0
    python push_to_hub.py runs/mars-segformer --repo_id user/x --dry_run      # list files, print the card
    python push_to_hub.py RUN --repo_id user/x --revision experiment --private --commit_message "..."

The token comes from HF_TOKEN or the saved login (`hf auth login`).
"""

import sys

from mars_segformer.hub.cli import push_main as main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
