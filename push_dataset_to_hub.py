"""Publish a tile file as a Hub dataset (train / validation / test by frame, Image features) with a card.

    python push_dataset_to_hub.py ../shared/data/ai4mars_msl_64x128.npz --repo_id user/ai4mars-msl-tiles
    python push_dataset_to_hub.py --repo_id user/x --dry_run          # the embedded sample; print the card
    python train_hf.py --data user/ai4mars-msl-tiles                  # then train on it

The token comes from HF_TOKEN or the saved login (`hf auth login`).
"""

import argparse
import sys

from mars_segformer.data import MarsDataError, load_arrays
from mars_segformer.hub import HubPushError
from mars_segformer.hub.dataset import push_dataset


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", nargs="?", default=None, help="course-layout .npz or AI4Mars folder (default: embedded sample)")
    p.add_argument("--repo_id", required=True, help="user/name of the dataset on the Hub")
    p.add_argument("--private", action="store_true")
    p.add_argument("--revision", default=None, help="branch to push to (created from main if missing)")
    p.add_argument("--val_fraction", type=float, default=0.2, help="share of frames in the validation split")
    p.add_argument("--seed", type=int, default=42, help="split seed (train_hf.py --seed 42 reproduces the split)")
    p.add_argument("--dry_run", action="store_true", help="print the card and split sizes; upload nothing")
    args = p.parse_args(argv)
    try:
        if not 0 < args.val_fraction < 1:
            raise HubPushError(f"--val_fraction must lie in (0, 1), got {args.val_fraction}")
        res = push_dataset(load_arrays(args.data), args.repo_id, args.private, args.revision,
                           val_fraction=args.val_fraction, seed=args.seed, dry_run=args.dry_run)
    except (HubPushError, MarsDataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(res["card"])
    print(f"{'would push' if args.dry_run else 'pushed'} dataset {res['repo_id']}: "
          + ", ".join(f"{k} {v} tiles" for k, v in res["splits"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
