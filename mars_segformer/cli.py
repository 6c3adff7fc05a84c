"""``mars-segformer``: one console command with a subcommand per job.

    mars-segformer train [train_hf.py flags]        # also: accelerate launch -m mars_segformer train ...
    mars-segformer predict --model RUN --data FILE --out DIR
    mars-segformer push RUN --repo_id user/name [--dry_run]
    mars-segformer push-dataset [FILE] --repo_id user/name
    mars-segformer eda FILE --out DIR
    mars-segformer self-train --teacher RUN --out DIR [-- student flags]
    mars-segformer pretrain --data FILE --output_dir DIR   # self-supervised backbone (DenseCL)
    mars-segformer demo --model RUN

Each subcommand's ``--help`` lists its flags. Subcommands import only what they need, so an
unknown subcommand is answered at once.
"""

from __future__ import annotations

import sys

#: subcommand -> (module, function, one-line description); the function takes the remaining argv
COMMANDS = {
    "train": ("mars_segformer.training", "main", "train a model (the train_hf.py flags; every TrainingArguments flag)"),
    "predict": ("mars_segformer.predict", "main", "predict tiles or whole images with a run folder or Hub model"),
    "push": ("mars_segformer.hub.cli", "push_main", "publish a run folder to the Hub with its model card"),
    "push-dataset": ("mars_segformer.hub.cli", "push_dataset_main", "publish a tile file as a Hub dataset with a card"),
    "eda": ("mars_segformer.eda", "main", "class shares, sample grids and outliers of a tile file"),
    "self-train": ("mars_segformer.self_train", "main", "rounds of pseudo-labelling the unlabelled tiles"),
    "pretrain": ("mars_segformer.pretrain", "main", "self-supervised pretraining of the default backbone on images (DenseCL)"),
    "demo": ("mars_segformer.demo", "main", "the Gradio demo (needs the [demo] extra)"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: mars-segformer COMMAND [flags]   (mars-segformer COMMAND --help lists its flags)", "", "commands:"]
    lines += [f"  {name:<{width}}  {desc}" for name, (_, _, desc) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        from . import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        import difflib

        close = difflib.get_close_matches(name, COMMANDS, n=1)
        print(f"error: unknown command {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
              + f"; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    import importlib

    module, func, _ = COMMANDS[name]
    code = getattr(importlib.import_module(module), func)(rest)
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
