"""The flag table read from source (training/flags.py) against transformers' real parser, the oracle.

The pre-check must know every option the real parser knows, type each as the parser does, and
reject only command lines the real parser rejects too.
"""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from transformers.hf_argparser import string_to_bool

from mars_segformer.training.errors import RunError
from mars_segformer.training.flags import (
    check_early,
    check_names,
    check_quick_values,
    expand_config,
    flag_table,
    known_names,
    option_strings,
    precheck,
    quick_values,
)
from mars_segformer.training.run import DATACLASSES, _parse, _Parser, parse_args

ROOT = Path(__file__).resolve().parents[2]


def real_parser():
    return _Parser(DATACLASSES, prog="train_hf.py")


def real_rejects(argv) -> bool:
    try:
        _parse(["--output_dir", "/nonexistent/never-written", *argv])
    except (SystemExit, RunError, ValueError):
        return True
    return False


def test_every_real_option_is_in_the_table_with_the_parsers_type():
    options = option_strings(flag_table())
    metadata_choices = {f.name for dc in DATACLASSES for f in dataclasses.fields(dc) if "choices" in f.metadata}
    checked = 0
    for action in real_parser()._actions:
        for opt in action.option_strings:
            if opt in ("-h", "--help"):
                continue
            assert opt in options, f"{opt} missing from the flag table"
        if not action.option_strings or action.dest == "help" or any(o.startswith("--no_") for o in action.option_strings):
            continue
        flag = flag_table()[action.dest]
        if action.choices is not None and action.dest in metadata_choices:
            assert flag.kind in ("str", "other"), action.dest  # computed choices: left to the real parser
        elif action.choices is not None:
            assert flag.kind == "choice" and set(flag.choices) == {str(getattr(c, "value", c)) for c in action.choices}, action.dest
        elif action.type is int:
            assert flag.kind == "int", action.dest
        elif action.type is float:
            assert flag.kind == "float", action.dest
        elif action.type is string_to_bool:
            assert flag.kind == "bool", action.dest
        checked += 1
    assert checked > 100  # TrainingArguments' fields and the package's own


def test_table_holds_no_option_the_real_parser_lacks():
    real = {o for a in real_parser()._actions for o in a.option_strings}
    extra = set(option_strings(flag_table())) - real
    assert not extra, sorted(extra)[:5]


def test_a_str_override_of_an_enum_field_keeps_the_enums_choices_and_the_real_run_rejects_others():
    # MarsTrainingArguments declares lr_scheduler_type as plain str; TrainingArguments.__post_init__ converts it
    flag = flag_table()["lr_scheduler_type"]
    assert flag.kind == "choice" and "polynomial" in flag.choices
    assert real_rejects(["--lr_scheduler_type", "cosin"])
    assert not real_rejects(["--lr_scheduler_type", flag.choices[0]])


BAD = [
    ["--num_train_epochs", "abc"], ["--max_steps", "1.5"], ["--learnig_rate", "1e-3"], ["--ignore_background", "maybe"],
    ["--eval_strategy", "sometimes"], ["--seed", "x"], ["--val_fraction", "a"], ["--no_drop_outliers", "yes"],
    ["--bogus"], ["--per-device-train-batch-size", "big"],
]


@pytest.mark.parametrize("argv", BAD, ids=lambda a: " ".join(a))
def test_precheck_rejects_what_the_real_parser_rejects(argv):
    assert real_rejects(argv)
    with pytest.raises(RunError) as err:
        precheck(argv)
    assert argv[0].split("=")[0] in str(err.value)


GOOD = [
    ["--num_train_epochs", "2", "--max_steps=3", "--learning-rate", "1e-4"],
    ["--push_to_hub", "--ignore_background", "false", "--no_drop_outliers"],
    ["--report_to", "none", "--warmup_steps", "0.1", "--model_name_or_path", "upernet-r18"],
    ["--num_train_ep", "2"],  # argparse's unique prefix
    ["--class_weights", "1,1,1,1,1", "--seed", "-1"],
]


@pytest.mark.parametrize("argv", GOOD, ids=lambda a: " ".join(a))
def test_precheck_accepts_what_the_real_parser_accepts(argv):
    assert not real_rejects(argv)
    precheck(argv)


def test_every_ablation_recipe_and_config_file_passes_the_precheck():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from ablation import CONFIGS
    finally:
        sys.path.remove(str(ROOT / "bench"))
    for name, (_, argv) in CONFIGS.items():
        precheck(argv)
        assert not real_rejects(argv), name
    for cfg in sorted((ROOT / "configs").glob("*.yaml")):
        precheck(expand_config([str(cfg)]))


def test_a_bad_flag_is_answered_without_importing_torch(tmp_path):
    code = ("import sys; from mars_segformer.training import main; rc = main(['--num_train_epochs', 'abc']); "
            "print(rc, 'torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.stdout.split() == ["2", "False", "False"], out.stdout + out.stderr
    assert out.stderr.strip() == "error: --num_train_epochs expects a number, got 'abc'"


def test_quick_value_rules_answer_as_the_full_check_does():
    """Every train case of the CLI suite (whose message the full path is tested to give): where the quick
    check (given values over the source's defaults, before torch) stops, it says the same; and every case
    whose message is a rule of training/ranges.py is stopped by it."""
    from tests.test_cli_errors import CASES, W

    ranges_source = (ROOT / "mars_segformer" / "training" / "ranges.py").read_text()
    caught = 0
    for kind, argv, needle in CASES:
        if kind != "train":
            continue
        if any(W in a for a in argv):
            continue  # cases about the world's files: tests/test_cli_errors.py runs them through the command
        try:
            check_early(argv)
        except RunError as err:
            assert needle in str(err), (argv, str(err))
            caught += 1
            continue
        assert needle not in ranges_source, f"{argv}: a ranges.py rule the quick check missed"
        # a bad name is answered early; a model's revision and its overrides need the model itself
        assert (not any(a in ("--loss", "--augmentations", "--model") for a in argv)
                or {"--model_revision", "--model_overrides"} & set(argv)), \
            f"{argv}: a name the early check should have answered"
    assert caught >= 10


def test_names_read_from_source_are_the_modules_own():
    from mars_segformer.data.augment import AUGMENTATION_NAMES
    from mars_segformer.models import PRESETS

    names = known_names()
    assert names["augmentations"] == tuple(AUGMENTATION_NAMES) and names["presets"] == tuple(PRESETS)


def test_quick_value_rules_pass_every_recipe_and_config():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from ablation import CONFIGS
    finally:
        sys.path.remove(str(ROOT / "bench"))
    for argv in [*GOOD, *(flags for _, flags in CONFIGS.values())]:
        check_quick_values(quick_values(argv))
        check_names(quick_values(argv))
    for cfg in sorted((ROOT / "configs").glob("*.yaml")):  # (their --data is the shared file: paths not checked here)
        check_quick_values(quick_values(expand_config([str(cfg)])))
        check_names(quick_values(expand_config([str(cfg)])))


def test_quick_values_take_the_last_occurrence_and_the_sources_defaults():
    ns = quick_values(["--val_fraction", "0.3", "--val-fraction=0.4", "--no_drop_outliers", "--push_to_hub"])
    parsed = parse_args(["--output_dir", "unused", "--val_fraction", "0.3", "--val-fraction=0.4", "--no_drop_outliers",
                         "--push_to_hub"])
    for name in ("val_fraction", "drop_outliers", "push_to_hub", "learning_rate", "lr_scheduler_type", "max_steps",
                 "oversample_big_rock", "loss", "per_device_train_batch_size", "early_stopping_patience",
                 "frame_read_p",  # a constant imported from a tuple assignment (data/frame_shift.py)
                 "augmentations"):  # ",".join of a constant imported from data/augment.py
        real = next(getattr(d, name) for d in parsed if hasattr(d, name))
        assert getattr(ns, name) == str(getattr(real, "value", real)) if name == "lr_scheduler_type" else \
            getattr(ns, name) == real, name
