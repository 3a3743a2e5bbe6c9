"""JSON Schema validation that reports every error with its place (file:line:column and JSON path)."""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from composer.errors import ComposerError, UserError, combine

INSTALLED_SCHEMAS = Path("/usr/share/vcomp/schemas")   # where the vpk package puts them (recipes/vpk)


def _schema_dir() -> Path:
    """schemas/ beside the package in a checkout, else the installed copy (vpk on a device)."""
    beside = Path(__file__).resolve().parent.parent / "schemas"
    return beside if beside.is_dir() or not INSTALLED_SCHEMAS.is_dir() else INSTALLED_SCHEMAS


SCHEMA_DIR = _schema_dir()

Locator = Callable[[Sequence[str | int]], tuple[int, int]]


def load(name: str) -> dict[str, Any]:
    """A schema of schemas/ as a fresh document (a caller may complete it from a registry)."""
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / name).read_text())
    return schema


@functools.cache
def validator(name: str) -> Draft202012Validator:
    schema = load(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@functools.lru_cache(maxsize=8)
def _validator_of(document: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(document))


def json_path(path: Sequence[str | int]) -> str:
    out = "$"
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 4] + "...'"


def describe(err: Any) -> str:
    """A jsonschema error as one line a user reads."""
    if err.validator == "additionalProperties":
        extra = unknown_keys(err)
        if not extra:
            return str(err.message).replace("Additional properties are not allowed", "unknown field(s):")
        known = sorted(err.schema.get("properties", {})) if isinstance(err.schema, dict) else []
        shown = ", ".join(f"{k!r}{_close(k, known)}" for k in extra)
        return f"unknown field{'s' if len(extra) > 1 else ''} {shown}"
    if err.validator == "required":
        return f"missing required field {err.message.split(' ')[0]}"
    if err.validator in ("pattern", "maxLength") and isinstance(err.schema, dict) and err.schema.get("description"):
        return f"{_shown(err.instance)} is not valid: expected {err.schema['description']}"
    if err.validator == "pattern":
        return f"{_shown(err.instance)} does not match the expected form"
    if err.validator == "enum":
        return f"{err.instance!r} is not one of {', '.join(map(str, err.validator_value))}"
    return str(err.message)


def unknown_keys(err: Any) -> list[str]:
    """The keys of an additionalProperties error that neither ``properties`` nor ``patternProperties`` allow."""
    if not (isinstance(err.instance, dict) and isinstance(err.schema, dict)):
        return []
    allowed = set(err.schema.get("properties", {}))
    patterns = [re.compile(p) for p in err.schema.get("patternProperties", {})]
    return sorted(k for k in err.instance if k not in allowed and not any(p.search(k) for p in patterns))


def _close(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def schema_errors(instance: Any, schema: str, *, origin: str, locate: Locator,
                  error_type: type[ComposerError] = UserError,
                  document: Mapping[str, Any] | None = None) -> list[ComposerError]:
    """Every error of ``instance`` against schemas/``schema`` (or ``document``, that schema as completed by
    its caller)."""
    errors: list[ComposerError] = []
    checker = validator(schema) if document is None else _validator_of(json.dumps(document, sort_keys=True))
    for err in sorted(checker.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path]):
        path = list(err.absolute_path)
        place = path
        if err.validator == "additionalProperties":
            extra = unknown_keys(err)
            place = [*path, extra[0]] if extra else path  # point at the unknown key itself
        line, col = locate(place)
        errors.append(error_type(f"{origin}:{line}:{col}: {json_path(path)}: {describe(err)}",
                                 hint=f"see schemas/{schema}"))
    return errors


def check(instance: Any, schema: str, *, origin: str, locate: Locator,
          error_type: type[ComposerError] = UserError) -> None:
    errors = schema_errors(instance, schema, origin=origin, locate=locate, error_type=error_type)
    if errors:
        raise combine(errors, summary=f"{origin}: {len(errors)} errors")
