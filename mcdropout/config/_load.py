"""Reading a YAML config, applying ``--set`` overrides, and explaining errors.

Every problem is reported before any work starts, as one line per problem
that begins with the YAML key path (``mc.n_passes: expected a positive
integer, got -3``); a misspelt key gets the closest valid key as a hint.
"""

import copy
import difflib
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mcdropout.config._default import DEFAULT_CONFIG_NAME, DEFAULT_CONFIG_TEXT
from mcdropout.config._errors import ConfigError
from mcdropout.config._schema import Config, NestedConfigError
from mcdropout.config._types import describe

__all__ = [
    "apply_overrides",
    "load_config",
    "parse_override",
    "read_yaml",
    "validate_config",
]

_KEY = re.compile(r"^[A-Za-z_]\w*(\.\w+)*$")


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping."""


def _mapping_without_duplicates(
    loader: _StrictLoader, node: yaml.MappingNode
) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            line = key_node.start_mark.line + 1
            raise ConfigError([f"{key}: key given twice (again at line {line})"])
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates
)


def read_yaml(text: str, *, source: str = "<config>") -> dict[str, Any]:
    """Parse YAML text into the raw config mapping (no validation yet).

    Parameters
    ----------
    text : str
        The YAML document.
    source : str
        Where it came from, for messages.

    Returns
    -------
    dict
        The top-level mapping.

    Raises
    ------
    ConfigError
        On a YAML syntax error, a duplicated key, or a top level that is not
        a mapping.
    """
    try:
        raw = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError([f"{source}: invalid YAML{where}: {problem}"]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            [f"{source}: expected a mapping of sections, got {type(raw).__name__}"]
        )
    return raw


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"mc.n_passes=100"`` into its key path and YAML-typed value.

    The value is read as a YAML scalar or flow collection (``100`` is an int,
    ``true`` a bool, ``[1, 2]`` a list, ``null`` None); the schema then checks
    its type like any value from the file.

    Examples
    --------
    >>> parse_override("mc.n_passes=100")
    (['mc', 'n_passes'], 100)
    """
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not _KEY.match(key):
        raise ConfigError(
            [
                f"--set {text!r}: expected KEY=VALUE with a dotted KEY, "
                "such as mc.n_passes=100"
            ]
        )
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = value
    return key.split("."), parsed


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict:
    """A copy of ``raw`` with each ``KEY=VALUE`` override set in it.

    Missing sections are created; a number in the key indexes a list
    (``ood.shifts.0.severities=[1, 2]``).
    """
    result = copy.deepcopy(dict(raw))
    for text in overrides:
        keys, value = parse_override(text)
        node: Any = result
        for depth, key in enumerate(keys[:-1]):
            node = _descend(node, key, keys[: depth + 1], text)
        _assign(node, keys[-1], value, keys, text)
    return result


def _descend(node: Any, key: str, path: list[str], text: str) -> Any:
    if isinstance(node, list) and key.isdigit() and int(key) < len(node):
        return node[int(key)]
    if not isinstance(node, dict):
        raise ConfigError([f"--set {text!r}: {'.'.join(path[:-1])} is not a section"])
    if node.get(key) is None:
        node[key] = {}
    return node[key]


def _assign(node: Any, key: str, value: Any, path: list[str], text: str) -> None:
    if isinstance(node, list) and key.isdigit() and int(key) < len(node):
        node[int(key)] = value
    elif isinstance(node, dict):
        node[key] = value
    else:
        raise ConfigError([f"--set {text!r}: {'.'.join(path[:-1])} is not a section"])


def validate_config(raw: Mapping[str, Any], *, name: str | None = None) -> Config:
    """Check a raw mapping against the schema and return the typed config.

    Parameters
    ----------
    raw : Mapping
        The parsed YAML (with overrides applied).
    name : str or None
        The run's name when the mapping sets none (the file's stem).

    Raises
    ------
    ConfigError
        Listing every problem, each with its key path.
    """
    try:
        config = Config.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(explain(error, raw)) from None
    if config.name is None:
        config = config.model_copy(update={"name": name or "run"})
    return config


def load_config(
    path: str | Path | None = None, overrides: Sequence[str] = ()
) -> Config:
    """Read, override and validate a config file.

    Parameters
    ----------
    path : str, Path or None
        A YAML file; None loads the embedded default (scikit-learn's digits).
    overrides : sequence of str
        ``KEY=VALUE`` settings applied on top, e.g. ``["mc.n_passes=100"]``.

    Returns
    -------
    Config
        The validated config; its ``name`` defaults to the file's stem.

    Raises
    ------
    ConfigError
        A missing or unreadable file, invalid YAML, an unknown key, a wrong
        type or value, or a missing file that the config names.

    Examples
    --------
    >>> config = load_config(overrides=["mc.n_passes=10"])
    >>> config.name, config.mc.n_passes
    ('digits', 10)
    """
    if path is None:
        text, source, name = DEFAULT_CONFIG_TEXT, "<default>", DEFAULT_CONFIG_NAME
    else:
        path = Path(path).expanduser()
        text, source, name = _read_text(path), str(path), path.stem
    raw = apply_overrides(read_yaml(text, source=source), overrides)
    return validate_config(raw, name=name)


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise ConfigError([f"--config: file not found: {path.resolve()}"])
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([f"--config: cannot read {path}: {error}"]) from None


# --- explaining validation errors -----------------------------------------


def explain(
    error: ValidationError, raw: Any, schema: type[BaseModel] = Config
) -> list[str]:
    """One line per problem of ``error``, each starting with its key path."""
    lines = []
    for item in error.errors(include_url=False):
        nested = (item.get("ctx") or {}).get("error")
        if isinstance(nested, NestedConfigError):
            inner_raw = _walk(raw, item["loc"])
            for line in explain(nested.error, inner_raw, nested.schema):
                lines.append(f"{_key_path(item['loc'], raw)}.{line}")
            continue
        lines.append(_line(item, raw, schema))
    return lines


def _line(item: Any, raw: Any, schema: type[BaseModel]) -> str:
    loc, kind, ctx = item["loc"], item["type"], item.get("ctx") or {}
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        loc = (*loc, ctx["discriminator"].strip("'"))
    path = _key_path(loc, raw) or "config"
    return f"{path}: {_message(item, loc, schema)}"


def _message(item: Any, loc: tuple, schema: type[BaseModel]) -> str:
    kind, ctx, given = item["type"], item.get("ctx") or {}, item.get("input")
    if kind == "extra_forbidden":
        return _unknown_key(str(loc[-1]), _field_names(schema, loc[:-1]))
    if kind in ("missing", "union_tag_not_found"):
        return "required key is missing"
    if kind in ("literal_error", "union_tag_invalid"):
        expected = ctx.get("expected") or ctx.get("expected_tags", "")
        given = ctx.get("tag", given)
        return f"expected one of {expected}, got {describe(given)}" + _hint(
            str(given), re.findall(r"'([^']*)'", expected)
        )
    if kind == "value_error":
        return str(ctx["error"])
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected a mapping (a YAML section), got {describe(given)}"
    if item["msg"].startswith("expected") or kind in (
        "file_not_found",
        "dir_not_found",
    ):
        return item["msg"]
    text = item["msg"]
    return f"{text[0].lower()}{text[1:]}, got {describe(given)}"


def _unknown_key(key: str, allowed: list[str]) -> str:
    if not allowed:
        return "unknown key"
    hint = _hint(key, allowed)
    if hint:
        return "unknown key" + hint
    return "unknown key; expected one of " + ", ".join(allowed)


def _hint(given: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(given, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _key_path(loc: tuple, raw: Any) -> str:
    """``loc`` as ``a.b[0].c``, without the union tags pydantic inserts."""
    text, node = "", raw
    for part in loc:
        if isinstance(node, dict) and part not in node and node.get("source") == part:
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
        node = _child_value(node, part)
    return text


def _child_value(node: Any, part: Any) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and part < len(node):
        return node[part]
    return None


def _walk(raw: Any, loc: tuple) -> Any:
    for part in loc:
        if isinstance(raw, dict) and part not in raw and raw.get("source") == part:
            continue
        raw = _child_value(raw, part)
    return raw


def _field_names(schema: type[BaseModel], loc: tuple) -> list[str]:
    """The keys the section at ``loc`` accepts (empty if not a section)."""
    node: Any = schema
    for part in loc:
        node = _child_type(node, part)
        if node is None:
            return []
    members = _members(node)
    if len(members) == 1 and _is_model(members[0]):
        return list(members[0].model_fields)
    return []


def _child_type(node: Any, part: Any) -> Any:
    members = _members(node)
    if len(members) > 1:
        # A discriminated union: ``part`` is the tag naming the member.
        for member in members:
            source = getattr(member, "model_fields", {}).get("source")
            if source is not None and part in typing.get_args(source.annotation):
                return member
        return None
    member = members[0]
    if typing.get_origin(member) is list:
        return typing.get_args(member)[0] if isinstance(part, int) else None
    if _is_model(member):
        field = member.model_fields.get(part)
        return None if field is None else field.annotation
    return None


def _members(node: Any) -> list[Any]:
    """The types a (possibly optional, annotated or union) annotation allows."""
    while typing.get_origin(node) is typing.Annotated:
        node = typing.get_args(node)[0]
    if typing.get_origin(node) in (typing.Union, types.UnionType):
        return [
            member
            for arg in typing.get_args(node)
            if arg is not type(None)
            for member in _members(arg)
        ]
    return [node]


def _is_model(node: Any) -> bool:
    return isinstance(node, type) and issubclass(node, BaseModel)
