"""The Hub commands: ``mars-segformer push`` (a run folder with its model card) and
``mars-segformer push-dataset`` (a tile file as a Hub dataset with its card); the root scripts
``push_to_hub.py`` and ``push_dataset_to_hub.py`` call these.

The token comes from HF_TOKEN or the saved login (`hf auth login`).
"""

from __future__ import annotations

import sys

from ..argparsing import ArgumentParser
from ..data.split import SPLIT_SEED, VAL_FRACTION

PUSH_MAIN_DOC = "Publish a trained run folder to the Hugging Face Hub with its model card."
PUSH_DATASET_MAIN_DOC = ("Publish a tile file as a Hub dataset (train / validation / test by frame, Image features) "
                         "with a card.")


def push_main(argv=None) -> int:
    p = ArgumentParser(prog="mars-segformer push", description=PUSH_MAIN_DOC)
    p.add_argument("run_dir", help="a finished train_hf.py output folder")
    p.add_argument("--repo_id", required=True, help="user/name on the Hub")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--revision", default=None, help="branch to push to (created from main if missing)")
    p.add_argument("--commit_message", default=None)
    p.add_argument("--dry_run", action="store_true", help="list the files and print the card; upload nothing")
    p.add_argument("--template", default=None, help="model card template (default: the package's hub/model_card.md)")
    args = p.parse_args(argv)
    from . import HubPushError, push_run

    try:
        res = push_run(args.run_dir, args.repo_id, private=args.private, revision=args.revision,
                       commit_message=args.commit_message, dry_run=args.dry_run, template=args.template)
    except (HubPushError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(res["card"])
        print("\nwould upload to", res["repo_id"] + ":", ", ".join(res["files"]))
    elif not res["changed"]:
        print(f"nothing changed: {res['repo_id']} already holds these {len(res['files'])} files "
              f"(commit {res['commit_oid']}); no commit made")
    else:
        print(f"pushed {len(res['files'])} files to {res['repo_id']}: {res['commit_url']}")
    return 0


def push_dataset_main(argv=None) -> int:
    p = ArgumentParser(prog="mars-segformer push-dataset", description=PUSH_DATASET_MAIN_DOC)
    p.add_argument("data", nargs="?", default=None, help="course-layout .npz or AI4Mars folder (default: embedded sample)")
    p.add_argument("--repo_id", required=True, help="user/name of the dataset on the Hub")
    p.add_argument("--private", action="store_true")
    p.add_argument("--revision", default=None, help="branch to push to (created from main if missing)")
    p.add_argument("--val_fraction", type=float, default=VAL_FRACTION, help="share of frames in the validation split")
    p.add_argument("--seed", type=int, default=SPLIT_SEED, help="split seed (train_hf.py --seed 42 reproduces the split)")
    p.add_argument("--dry_run", action="store_true", help="print the card and split sizes; upload nothing")
    args = p.parse_args(argv)
    from ..data import MarsDataError, load_arrays
    from . import HubPushError
    from .dataset import push_dataset

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

