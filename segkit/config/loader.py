"""Reading YAML configs with `_BASE_` inheritance, strictly: an unknown key is an error."""
from __future__ import annotations

import difflib
import os
from typing import Callable, Sequence

import yaml
from yacs.config import CfgNode as CN

from ..utils.io import atomic_write_text

BASE_KEY = "_BASE_"


class ConfigError(ValueError):
    """A config file or override names a key the defaults do not have, or gives it a bad value."""


def _parse_yaml(text: str, source: str) -> object:
    """`text` as YAML; a syntax error is a ConfigError naming `source`, the line, the column and yaml's reason
    (yaml's own message spans several lines and comes with a long traceback)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None)
        if mark is None or not problem:
            raise ConfigError(f"{source}: not valid YAML: {' '.join(str(e).split())}") from None
        context, start = getattr(e, "context", None), getattr(e, "context_mark", None)
        # The context says where the construct left open began (a '[' never closed), often the real fault.
        where = f" ({context} started at line {start.line + 1}, column {start.column + 1})" if context and start else ""
        raise ConfigError(f"{source}: not valid YAML at line {mark.line + 1}, column {mark.column + 1}: "
                          f"{problem}{where}") from None


def _read_yaml_chain(path: str, seen: tuple[str, ...] = ()) -> list[tuple[str, dict]]:
    """The file and its `_BASE_` ancestors as (path, dict), the root ancestor first."""
    path = os.path.abspath(path)
    if path in seen:
        raise ConfigError(f"config {path}: _BASE_ cycle through {' -> '.join(seen)}")
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise ConfigError(f"config {path} is not UTF-8 text (byte {e.start})") from None
    data = _parse_yaml(text, f"config {path}") or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: top level must be a mapping, got {type(data).__name__}")
    base = data.pop(BASE_KEY, None)
    chain: list[tuple[str, dict]] = []
    if base:
        bases = [base] if isinstance(base, str) else list(base)
        for b in bases:
            chain += _read_yaml_chain(os.path.join(os.path.dirname(path), b), seen + (path,))
    chain.append((path, data))
    return chain


def _all_keys(node: CN, prefix: str = "") -> list[str]:
    """Every key of `node` by its full name, sections included."""
    keys = []
    for k, v in node.items():
        keys.append(f"{prefix}{k}")
        if isinstance(v, CN):
            keys += _all_keys(v, f"{prefix}{k}.")
    return keys


def unknown_key_error(root: CN, key: str, source: str) -> ConfigError:
    """The error for an unknown `key`, with the known keys it most resembles: a typo ("SOLVER.BASE_LRR")
    or the right name in the wrong section ("TRAIN.BASE_LR")."""
    known = _all_keys(root)
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.75)
    last = key.rsplit(".", 1)[-1]
    close += [k for k in known if k.rsplit(".", 1)[-1] == last and k not in close]
    hint = f"; did you mean {' or '.join(repr(k) for k in close[:3])}?" if close else ""
    return ConfigError(f"{source}: unknown config key '{key}'{hint}")


def _check_keys(node: CN, data: dict, prefix: str, source: str, root: CN | None = None) -> None:
    # yacs checks keys too, but names only the key; the file at fault matters as much.
    root = node if root is None else root
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in node:
            raise unknown_key_error(root, full, source)
        if isinstance(node[key], CN):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{full}' is a section, got the value {value!r}")
            _check_keys(node[key], value, full + ".", source, root)
        else:
            check_type(full, node[key], value, source)


def check_type(key: str, default: object, value: object, source: str) -> None:
    """A value of another type than the key's default is an error that says what to write.

    yacs refuses these too, but with a message about Python classes; an int where a float is expected
    (SOLVER.BASE_LR 1) is the common case, and the fix is a decimal point.
    """
    if default is None or value is None or isinstance(value, type(default)) and not (
            isinstance(value, bool) and not isinstance(default, bool)):
        return
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        raise ConfigError(f"{source}: '{key}' expects a float, got {value!r} (an int): write {float(value)!r}")
    if isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)):
        return  # yacs converts between the two
    raise ConfigError(f"{source}: '{key}' expects a {type(default).__name__} (default {default!r}), "
                      f"got {value!r} ({type(value).__name__})")


def merge_file(cfg: CN, path: str) -> CN:
    """Merge a YAML file (and its `_BASE_` chain) into `cfg` in place."""
    for source, data in _read_yaml_chain(path):
        _merge_dict(cfg, data, source)
    return cfg


def _merge_dict(cfg: CN, data: dict, source: str) -> None:
    _check_keys(cfg, data, "", source)
    try:
        cfg.merge_from_other_cfg(CN(data))
    except (KeyError, ValueError) as e:
        raise ConfigError(f"{source}: {e}") from e


def merge_opts(cfg: CN, opts: Sequence[str]) -> CN:
    """Merge command-line `KEY VALUE` pairs into `cfg` in place."""
    opts = list(opts or [])
    if len(opts) % 2:
        raise ConfigError(f"overrides must be KEY VALUE pairs, got an odd number: {opts}")
    for key, value in zip(opts[0::2], opts[1::2]):
        node = cfg
        for part in key.split("."):
            if not isinstance(node, CN) or part not in node:
                raise unknown_key_error(cfg, key, "command line")
            node = node[part]
        check_type(key, node, _literal(value), "command line")
        try:
            cfg.merge_from_list([key, value])
        except (KeyError, ValueError, AssertionError) as e:
            raise ConfigError(f"command line: bad value {value!r} for '{key}': {e}") from e
    return cfg


def _literal(text: str) -> object:
    # The value as yacs will read it: a Python literal where it parses, else the string itself.
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def load_cfg(
    config_file: str | None = None,
    opts: Sequence[str] | None = None,
    defaults: Callable[[], CN] | None = None,
) -> CN:
    """Defaults, then the file chain, then the overrides; returns a frozen config."""
    if defaults is None:
        from .defaults import get_cfg as defaults
    cfg = defaults()
    if config_file:
        merge_file(cfg, config_file)
    merge_opts(cfg, opts or [])
    cfg.freeze()
    return cfg


def save_cfg(cfg: CN, path: str) -> None:
    """Write the merged config as YAML (the form `load_cfg` reads back), atomically."""
    atomic_write_text(path, cfg.dump())


def load_cfg_text(text: str, source: str, opts: Sequence[str] | None = None) -> CN:
    """Defaults, then a merged config as YAML text (what a checkpoint carries), then the overrides; frozen.

    `source` names where the text comes from in errors (a key this version of segkit does not know).
    """
    from .defaults import get_cfg

    data = _parse_yaml(text, source) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the config it carries is not a mapping")
    cfg = get_cfg()
    _merge_dict(cfg, data, source)
    merge_opts(cfg, opts or [])
    cfg.freeze()
    return cfg
