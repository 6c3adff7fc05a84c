"""Publish a trained run folder to the Hugging Face Hub with its model card.

    python push_to_hub.py runs/mars-segformer --repo_id user/mars-segformer-b0
    python push_to_hub.py runs/mars-segformer --repo_id user/x --dry_run      # list files, print the card
    python push_to_hub.py RUN --repo_id user/x --revision experiment --private --commit_message "..."

The token comes from HF_TOKEN or the saved login (`hf auth login`).
"""

import argparse
import sys

from mars_segformer.hub import HubPushError, push_run


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", help="a finished train_hf.py output folder")
    p.add_argument("--repo_id", required=True, help="user/name on the Hub")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--revision", default=None, help="branch to push to (created from main if missing)")
    p.add_argument("--commit_message", default=None)
    p.add_argument("--dry_run", action="store_true", help="list the files and print the card; upload nothing")
    p.add_argument("--template", default=None, help="model card template (default: model_card.md)")
    args = p.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
