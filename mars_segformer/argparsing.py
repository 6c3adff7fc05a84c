"""The argument parser every command of the package uses (``train`` has transformers' own).

Two things differ from ``argparse.ArgumentParser``: every ``--long_flag`` is accepted with
underscores and with dashes (the documented spelling is the underscore one, as ``train_hf.py``'s
``TrainingArguments`` flags are), and a usage error is one line, not the whole usage text.
"""

from __future__ import annotations

import argparse
import sys


def spellings(names: tuple[str, ...]) -> list[str]:
    """``names`` with each ``--long-flag`` as ``--long_flag`` first and ``--long-flag`` after it."""
    out: list[str] = []
    for n in names:
        if n.startswith("--") and len(n) > 2:
            for alt in ("--" + n[2:].replace("-", "_"), "--" + n[2:].replace("_", "-")):
                if alt not in out:
                    out.append(alt)
        elif n not in out:
            out.append(n)
    return out


def one_line_error(parser: argparse.ArgumentParser, message: str):
    """Print ``error: MESSAGE`` (and where the flags are listed) and exit 2."""
    sys.stderr.write(f"error: {message} (`{parser.prog} --help` lists the flags)\n")
    sys.exit(2)


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with both flag spellings and one-line usage errors."""

    def add_argument(self, *names, **kwargs):
        return super().add_argument(*spellings(names), **kwargs)

    def error(self, message: str):
        one_line_error(self, message)
