"""Recipes (``recipe.toml``): package metadata + sources + file rules + per-architecture overrides."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer import schema, tomlpos
from composer.arch import Arch, get_arch
from composer.errors import UserError
from composer.fsutil import sha256_bytes
from composer.limits import load_toml
from composer.package.metadata import validate_dict
from composer.package.sources import SOURCE_KINDS, recipe_schema

SCHEMA = "recipe.schema.json"
PLACEHOLDERS = ("arch", "deb_arch", "triple")


@dataclass(frozen=True, slots=True, kw_only=True)
class Recipe:
    directory: Path
    path: Path
    text: str
    data: Mapping[str, Any]    # merged for the target architecture, placeholders expanded
    arch: Arch

    @property
    def name(self) -> str:
        return str(self.data["package"]["name"])

    @property
    def digest(self) -> str:
        return sha256_bytes(self.text.encode())

    @property
    def sources(self) -> list[Mapping[str, Any]]:
        return list(self.data["source"])

    def place(self, *path: str | int) -> str:
        line, col = tomlpos.locate(self.text, list(path))
        return f"{self.path}:{line}:{col}"


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)
    return base


def _expand(value: Any, arch: Arch) -> Any:
    if isinstance(value, str):
        for name in PLACEHOLDERS:
            value = value.replace("{" + name + "}", {"arch": arch.name, "deb_arch": arch.deb,
                                                     "triple": arch.triple}[name])
        return value
    if isinstance(value, list):
        return [_expand(v, arch) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, arch) for k, v in value.items()}
    return value


DEB_PLACEHOLDERS = {"{deb_version}": "0.0.0", "{deb_release}": "0.0.0"}


def _dummy_versions(value: Any) -> Any:
    """Stand-ins for placeholders only known after the .deb is fetched (checked again when written)."""
    if isinstance(value, str):
        for k, v in DEB_PLACEHOLDERS.items():
            value = value.replace(k, v)
        return value
    if isinstance(value, list):
        return [_dummy_versions(v) for v in value]
    if isinstance(value, dict):
        return {k: _dummy_versions(v) for k, v in value.items()}
    return value


def load_recipe(directory: Path, arch_name: str) -> Recipe:
    arch = get_arch(arch_name)
    path = directory / "recipe.toml"
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"{directory}: no recipe.toml", hint="a recipe directory holds recipe.toml") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text", hint="a recipe is TOML in UTF-8: save it as UTF-8") from None
    try:
        raw = load_toml(text, str(path))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: invalid TOML: {exc}", hint="fix the TOML syntax at that line") from None
    schema.check(raw, SCHEMA, origin=str(path), locate=lambda p: tomlpos.locate(text, p),
                 document=recipe_schema(schema.load(SCHEMA)) if SOURCE_KINDS.plugin_rows() else None)
    supported = raw.get("build", {}).get("architectures")
    if supported and arch.name not in supported:
        line, col = tomlpos.locate(text, ["build", "architectures"])
        raise UserError(f"{path}:{line}:{col}: recipe '{raw['package'].get('name')}' does not support "
                        f"{arch.name} (build.architectures = {supported})",
                        hint=f"build it with --arch {supported[0]} or add {arch.name} to the list")
    base = {k: copy.deepcopy(v) for k, v in raw.items() if k != "arch"}
    merged = _merge(base, raw.get("arch", {}).get(arch.name, {}))
    merged = _expand(merged, arch)
    sections = ("package", "dependencies", "relations", "features", "capabilities", "security", "driver", "kernel",
                "boot", "actions")
    meta_view = {k: _dummy_versions(merged[k]) for k in sections if k in merged}
    meta_view["package"] = {**meta_view["package"], "arch": meta_view["package"].get("arch", arch.name)}
    meta_view.setdefault("security", {"context": "system_t"})
    validate_dict(meta_view, origin=str(path), text=text)
    return Recipe(directory=directory, path=path, text=text, data=merged, arch=arch)
