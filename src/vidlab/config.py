"""Typed configs loaded from YAML and overridden with `--set a.b=c`.

Every config in vidlab is a pydantic model; this module turns a YAML file plus a list of dotted
overrides into one, with errors that name the file and the offending key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from vidlab.errors import ConfigError

C = TypeVar("C", bound=BaseModel)


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false are bools, so `amp: off`, `on`, `yes`
    and `no` stay the strings that settings such as `train.amp=off` expect."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"))
_Yaml12Loader.add_implicit_resolver(  # 1e-3 is a float in YAML 1.2 (1.1 wants 1.0e-3)
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."))


def yaml_load(text: str) -> Any:
    """Parse YAML safely (no object construction) with YAML 1.2 booleans."""
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split `a.b.c=value` into the key path and a YAML-typed value (`3` → int, `[1,2]` → list)."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not of the form key.path=value")
    key, raw = item.split("=", 1)
    keys = [k for k in key.strip().split(".") if k]
    if not keys:
        raise ConfigError(f"override {item!r} has an empty key")
    try:
        value = yaml_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return keys, value


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Return a copy of `data` with each `key.path=value` override set (creating sub-dicts)."""
    out = _deepcopy(data)
    for item in overrides or []:
        keys, value = parse_override(item)
        node = out
        for k in keys[:-1]:
            child = node.get(k)
            if not isinstance(child, dict):
                child = {}
                node[k] = child
            node = child
        node[keys[-1]] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or a non-mapping is a `ConfigError` naming the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("config file not found", p)
    try:
        data = yaml_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML ({exc})", p) from exc
    if not isinstance(data, dict):
        raise ConfigError("top level must be a mapping of settings", p)
    return data


def load_config(
    cls: type[C],
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    base: dict[str, Any] | None = None,
) -> C:
    """Build a `cls` config from defaults ← `base` ← YAML file ← dotted overrides."""
    data = _deepcopy(base or {})
    if path is not None:
        data = deep_merge(data, read_yaml(path))
    return validate(cls, apply_overrides(data, overrides), where=f"{path}: " if path else "")


def validate(cls: type[C], data: dict[str, Any], where: str = "") -> C:
    """`cls` built from `data`, or a `ConfigError` naming the keys and what is wrong with them
    (`where` says whose values they are: a file, a search trial)."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise ConfigError(f"{where}invalid config: {problems}") from exc


def save_config(config: BaseModel, path: str | Path) -> None:
    """Write the resolved config as YAML (what `load_config` reads back to the same object)."""
    Path(path).write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))


def deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """`a` updated by `b`, recursing into mappings present in both (inputs are not changed)."""
    out = _deepcopy(a)
    for k, v in b.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _deepcopy(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _deepcopy(v) if isinstance(v, dict) else v for k, v in d.items()}
