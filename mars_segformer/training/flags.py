"""The training flags as a table read from the argument dataclasses' source, without importing them.

``train_hf.py`` parses its flags with transformers' ``HfArgumentParser`` over
:mod:`.arguments`' dataclasses, and importing those imports torch and transformers (8-14 s on a
2-core machine). :func:`precheck` answers the common mistakes first, from the dataclasses' source
text (``ast``): an unknown flag, a value that is not an int / float / bool, a choice outside an
enum, a config file's unknown key. It rejects nothing the real parser would accept: a flag it
cannot type is passed on, and the real parser still checks everything afterwards.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

from .errors import RunError

#: the dataclasses of :mod:`.arguments`, in the order the parser takes them
OWN_CLASSES = ("ModelArguments", "DataArguments", "LossArguments", "MarsTrainingArguments")
#: transformers' sources holding ``TrainingArguments`` and the enums its fields use
TRANSFORMERS_FILES = ("training_args.py", "trainer_utils.py", "debug_utils.py")
#: ``hf_argparser.string_to_bool``'s spellings
TRUE, FALSE = ("yes", "true", "t", "y", "1"), ("no", "false", "f", "n", "0")


@dataclass(frozen=True)
class Flag:
    """One dataclass field as the parser sees it.

    Attributes:
        name: the field (``--name``; ``--na-me`` too).
        kind: ``int``, ``float``, ``bool``, ``str``, ``choice`` or ``other`` (not checked here).
        choices: the accepted values of a ``choice`` flag.
        negatable: a bool defaulting to True, which also has ``--no_name``.
        aliases: extra option strings from the field's metadata.
        default: the default when the source writes it as a literal, else None.
    """

    name: str
    kind: str
    choices: tuple[str, ...] = ()
    negatable: bool = False
    aliases: tuple[str, ...] = ()
    default: object = None


def _enum_values(files: list[Path]) -> dict[str, tuple[str, ...]]:
    """``class X(...Enum): A = "a"`` in ``files`` -> {"X": ("a", ...)}."""
    enums = {}
    for path in files:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and any("Enum" in ast.unparse(b) for b in node.bases):
                values = [n.value.value for n in node.body if isinstance(n, ast.Assign)
                          and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)]
                if values:
                    enums[node.name] = tuple(values)
    return enums


def _kind(annotation: str, enums: dict) -> tuple[str, tuple[str, ...]]:
    """The parser's type for an annotation, as ``HfArgumentParser`` resolves unions."""
    parts = [p.strip() for p in annotation.split("|")]
    rest = [p for p in parts if p != "None"]
    if "None" not in parts and len(rest) == 2 and "str" in rest:  # `X | str`: the parser keeps X
        rest = [p for p in rest if p != "str"]
    if rest == ["bool"]:
        return "bool", ()
    if len(rest) == 1 and rest[0] in enums:
        return "choice", enums[rest[0]]
    if len(rest) == 1 and rest[0] in ("int", "float", "str"):
        return rest[0], ()
    return "other", ()


def _literals(tree: ast.Module) -> dict[str, object]:
    """A module's literal constants, ``NAME = <literal>`` and ``A, B = <literal>, <literal>``."""
    out = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target = node.targets[0]
        if isinstance(target, ast.Name):
            pairs = [(target, node.value)]
        elif (isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
              and len(target.elts) == len(node.value.elts) and all(isinstance(t, ast.Name) for t in target.elts)):
            pairs = list(zip(target.elts, node.value.elts, strict=True))
        else:
            continue
        for name, value in pairs:
            try:
                out[name.id] = ast.literal_eval(value)
            except (ValueError, TypeError, SyntaxError):
                pass
    return out


def _module_constants(path: Path) -> dict[str, object]:
    """Literal constants of a module and those it imports by name from a sibling module, where that module
    writes them as literals (``from ..data.split import VAL_FRACTION``), read from source; one level only."""
    tree = ast.parse(path.read_text())
    out = _literals(tree)
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level > 0 and node.module:
            base = path.parent
            for _ in range(node.level - 1):
                base = base.parent
            source = base.joinpath(*node.module.split(".")).with_suffix(".py")
            if source.is_file():
                found = _literals(ast.parse(source.read_text()))
                out.update({a.asname or a.name: found[a.name] for a in node.names if a.name in found})
    return out


def _value_of(node: ast.AST, constants: dict):
    """A default written as a literal, as a known constant's name, or as ``"SEP".join(<one of those>)`` of strings;
    None otherwise."""
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join"
            and isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str)
            and len(node.args) == 1 and not node.keywords):
        parts = _value_of(node.args[0], constants)
        ok = isinstance(parts, (tuple, list)) and all(isinstance(x, str) for x in parts)
        return node.func.value.value.join(parts) if ok else None
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        return None


def _metadata(call: ast.AST, constants: dict) -> tuple[tuple[str, ...], object]:
    """(aliases, the default's value or None) of a ``field(...)`` call or a plain default."""
    if not isinstance(call, ast.Call) or ast.unparse(call.func) not in ("field", "dataclasses.field"):
        return (), _value_of(call, constants)
    kw = {k.arg: k.value for k in call.keywords}
    aliases: tuple[str, ...] = ()
    if isinstance(kw.get("metadata"), ast.Dict):
        for k, v in zip(kw["metadata"].keys, kw["metadata"].values, strict=True):
            if isinstance(k, ast.Constant) and k.value == "aliases":
                value = ast.literal_eval(v)
                aliases = (value,) if isinstance(value, str) else tuple(value)
    return aliases, _value_of(kw["default"], constants) if "default" in kw else None


def _class_fields(path: Path, names: tuple[str, ...], enums: dict) -> dict[str, Flag]:
    table = {}
    constants = _module_constants(path)
    classes = {n.name: n for n in ast.parse(path.read_text()).body if isinstance(n, ast.ClassDef)}
    for cname in names:
        for node in classes[cname].body:
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                kind, choices = _kind(ast.unparse(node.annotation), enums)
                aliases, default = _metadata(node.value, constants) if node.value is not None else ((), None)
                table[node.target.id] = Flag(node.target.id, kind, choices, kind == "bool" and default is True,
                                             aliases, default)
    return table


@lru_cache(maxsize=1)
def flag_table() -> dict[str, Flag]:
    """Every training flag: ``TrainingArguments``' fields, then this package's (which override them)."""
    spec = importlib.util.find_spec("transformers")  # finds the package without importing it
    root = Path(next(iter(spec.submodule_search_locations)))
    files = [root / f for f in TRANSFORMERS_FILES if (root / f).is_file()]
    enums = _enum_values(files)
    table = _class_fields(root / "training_args.py", ("TrainingArguments",), enums)
    for name, flag in _class_fields(Path(__file__).with_name("arguments.py"), OWN_CLASSES, enums).items():
        base = table.get(name)
        if base is not None and base.kind == "choice" and flag.kind == "str":
            # a plain `str` override of an enum field: TrainingArguments.__post_init__ still converts it
            flag = replace(base, default=flag.default)
        table[name] = flag
    return table


def option_strings(table: dict[str, Flag]) -> dict[str, tuple[Flag, bool]]:
    """``--option`` -> (its flag, whether it is the ``--no_`` form), every spelling the parser accepts."""
    out = {}
    for flag in table.values():
        for spelling in {flag.name, flag.name.replace("_", "-")}:
            out[f"--{spelling}"] = (flag, False)
        for alias in flag.aliases:  # as the metadata spells them, like the parser
            out[alias] = (flag, False)
        if flag.negatable:
            for spelling in {f"no_{flag.name}", f"no-{flag.name.replace('_', '-')}"}:
                out[f"--{spelling}"] = (flag, True)
    return out


def _lookup(option: str, options: dict) -> tuple[Flag, bool] | None:
    """The flag an option names: exactly, or as argparse's unique prefix; None when it cannot say."""
    if option in options:
        return options[option]
    matches = {options[o][0].name for o in options if o.startswith(option)}
    if len(matches) == 1:
        return next(o for o in options.values() if o[0].name in matches)
    if matches:
        return None  # ambiguous: the real parser says so
    close = difflib.get_close_matches(option.replace("-", "_"), [o for o in options if "-" not in o[2:]], n=1)
    raise RunError(f"unknown flag {option}" + (f" (did you mean {close[0]}?)" if close else "")
                   + "; `python train_hf.py --help` lists them")


def _check_value(option: str, flag: Flag, values: list[str]) -> None:
    if flag.kind == "other":
        return
    if flag.kind == "bool":
        if values and values[0].lower() not in TRUE + FALSE:
            raise RunError(f"{option} expects true or false, got {values[0]!r}")
        return
    if not values:
        raise RunError(f"{option} expects a value")
    value = values[0]
    if flag.kind == "int":
        try:
            int(value)
        except ValueError:
            raise RunError(f"{option} expects an integer, got {value!r}") from None
    elif flag.kind == "float":
        try:
            float(value)
        except ValueError:
            raise RunError(f"{option} expects a number, got {value!r}") from None
    elif flag.kind == "choice" and value not in flag.choices:
        raise RunError(f"{option} expects one of {', '.join(flag.choices)}, got {value!r}")


def _is_value(token: str) -> bool:
    if not token.startswith("-"):
        return True
    try:
        float(token)  # a negative number is a value, as argparse reads it
        return True
    except ValueError:
        return False


def _given(argv: list[str]):
    """(``--option`` as typed, its values) for each option of a command line, in order; a value is the part
    after ``=`` or the tokens up to the next option (stray values are the real parser's to name)."""
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if not token.startswith("--"):
            continue
        option, eq, inline = token.partition("=")
        values = [inline] if eq else []
        if not eq:
            while i < len(argv) and _is_value(argv[i]):
                values.append(argv[i])
                i += 1
        yield option, values


def precheck(argv: list[str]) -> None:
    """Raise :class:`RunError` for the first flag or value the training parser would reject.

    Args:
        argv: the command line after any config file was expanded (:func:`expand_config`).
    """
    if any(a in ("-h", "--help") for a in argv):
        return
    options = option_strings(flag_table())
    for option, values in _given(argv):
        found = _lookup(option, options)
        if found is None:
            continue
        flag, negated = found
        if negated:
            if values:
                raise RunError(f"{option} takes no value, got {values[0]!r}")
            continue
        _check_value(option, flag, values)


def given_flags(argv: list[str]) -> set[str]:
    """The flag names ``argv`` gives, in the dataclass spelling (``--max-steps`` and ``--max_steps`` alike)."""
    return {a[2:].split("=", 1)[0].replace("-", "_") for a in argv if a.startswith("--")}


def flag_value(argv: list[str], name: str) -> str | None:
    """The value ``argv`` gives flag ``name`` (its last occurrence, as argparse keeps), or None."""
    value = None
    for i, a in enumerate(argv):
        if a.startswith("--") and a[2:].split("=", 1)[0].replace("-", "_") == name:
            if "=" in a:
                value = a.split("=", 1)[1]
            else:
                nxt = argv[i + 1] if i + 1 < len(argv) else None
                value = "true" if nxt is None or nxt.startswith("--") else nxt  # a bare boolean flag
    return value


def check_paths(ns: SimpleNamespace) -> None:
    """Raise :class:`RunError` for a local ``--data`` / ``--extra_data`` that does not exist, a ``--teachers``
    folder that is not a trained run, or an
    ``--output_dir`` that cannot be a folder: the files a run needs, checked before the heavy imports."""
    from ..data.sources import HUB_ID
    from ..outputs import OutputPathError, check_output_folder

    for name in ("data", "extra_data"):
        value = getattr(ns, name)
        if value and not Path(value).exists() and not (HUB_ID.fullmatch(value) and not value.endswith(".npz")):
            raise RunError(f"{value}: no such file or folder (--{name}: a tile file, an AI4Mars folder or a Hub "
                           "dataset owner/name)")
    teachers = getattr(ns, "teachers", None)
    if teachers:
        from .distillation import check_teacher_folders, teacher_list

        check_teacher_folders(teacher_list(teachers))
    out = ns.output_dir
    if out:
        try:
            check_output_folder(out, "--output_dir")
        except OutputPathError as err:
            raise RunError(str(err)) from None


def _convert(flag: Flag, values: list[str]):
    if flag.kind == "bool":
        return not values or values[0].lower() in TRUE
    if not values:
        return None
    if flag.kind == "int":
        return int(values[0])
    if flag.kind == "float":
        return float(values[0])
    return values[0] if len(values) == 1 else values


def quick_values(argv: list[str]) -> SimpleNamespace:
    """Every training field's value as the command line leaves it: given values (typed, the last occurrence
    winning) over the defaults written in the source (None where a default is not a literal). Call after
    :func:`precheck`, which guarantees the given values convert."""
    table = flag_table()
    options = option_strings(table)
    values = {name: flag.default for name, flag in table.items()}
    for option, given in _given(argv):
        try:
            found = _lookup(option, options)
        except RunError:
            continue
        if found is not None:
            flag, negated = found
            values[flag.name] = False if negated else _convert(flag, given)
    return SimpleNamespace(**values)


def check_quick_values(ns: SimpleNamespace) -> None:
    """The value rules (:func:`.ranges.check_values`) on :func:`quick_values`; a rule that meets a default
    this table cannot know (None) is left to the full check after the imports."""
    from .ranges import check_values

    try:
        check_values(ns, ns, ns, ns)
    except RunError:
        raise
    except (TypeError, AttributeError, ValueError):
        return


def _names_constant(path: Path, name: str) -> tuple[str, ...]:
    """The string names a module-level constant holds, read from source: a tuple/list of strings, a dict's string
    keys, or a tuple of ``*OTHER`` such constants (``AUGMENTATION_NAMES = (*AUGMENTATIONS, *POOL_AUGMENTATIONS)``)."""
    nodes = {}
    for node in ast.parse(path.read_text()).body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else getattr(node, "target", None)
        if isinstance(target, ast.Name) and getattr(node, "value", None) is not None:
            nodes[target.id] = node.value

    def names(value) -> tuple[str, ...]:
        if isinstance(value, ast.Dict):
            return tuple(k.value for k in value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str))
        if isinstance(value, (ast.Tuple, ast.List)):
            out: list[str] = []
            for e in value.elts:
                if isinstance(e, ast.Starred) and isinstance(e.value, ast.Name):
                    out += names(nodes[e.value.id])
                elif isinstance(e, ast.Constant) and isinstance(e.value, str):
                    out.append(e.value)
            return tuple(out)
        return ()

    return names(nodes[name])


@lru_cache(maxsize=1)
def known_names() -> dict[str, tuple[str, ...]]:
    """The augmentation names and model presets, read from ``data/augment.py`` and ``models/registry.py``."""
    package = Path(__file__).resolve().parents[1]
    return {"augmentations": _names_constant(package / "data" / "augment.py", "AUGMENTATION_NAMES"),
            "presets": _names_constant(package / "models" / "registry.py", "PRESETS")}


def check_names(ns: SimpleNamespace) -> None:
    """Raise :class:`RunError` for an unknown augmentation name, a bad ``--loss`` spec or a ``--model`` that is no
    preset, folder or Hub repo id, with the messages the full check gives, before the heavy imports."""
    from ..data.sources import model_source_kind
    from .ranges import check_loss_spec, parse_augmentations, parse_overrides

    names = known_names()
    if ns.augmentations is not None:  # None: not given (its default is not a literal)
        parse_augmentations(ns.augmentations, names["augmentations"])
    if ns.loss is not None:
        check_loss_spec(ns.loss)
    parse_overrides(ns.model_overrides)  # its JSON; its field names need the model's config
    if ns.model is not None:
        try:
            model_source_kind(ns.model, names["presets"])
        except ValueError as err:
            raise RunError(str(err)) from None


def check_early(argv: list[str]) -> list[str]:
    """Every check that can run before torch is imported, in order: the config file, flags and value types
    (:func:`precheck`), then, on the values they give over the source's defaults (:func:`quick_values`), the
    files, the value rules and the names. Returns the command line with the config file expanded.

    Raises:
        RunError: the first problem, with the message the full check after the imports would give.
    """
    flat = expand_config(argv)
    precheck(flat)
    ns = quick_values(flat)
    check_paths(ns)
    check_quick_values(ns)
    check_names(ns)
    return flat


def expand_config(argv: list[str]) -> list[str]:
    """A leading ``.yaml``/``.json`` config file becomes flags (later flags override it)."""
    if not (argv and argv[0].endswith((".yaml", ".yml", ".json"))):
        return argv
    path = Path(argv[0])
    if not path.is_file():
        raise RunError(f"{path}: config file not found")
    import yaml

    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise RunError(f"{path}: not valid YAML/JSON ({str(err).splitlines()[0]})") from None
    if not isinstance(cfg, dict):
        raise RunError(f"{path}: expected a mapping of flag names to values, got {type(cfg).__name__}")
    known = set(flag_table())
    for k in cfg:
        if k not in known:
            close = difflib.get_close_matches(str(k), known, n=1)
            raise RunError(f"{path}: unknown key {k!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                           + "; keys are train_hf.py's flag names")
    flat = []
    for k, v in cfg.items():
        flat += [f"--{k}", ",".join(map(str, v)) if isinstance(v, list) else str(v)]
    return flat + argv[1:]
