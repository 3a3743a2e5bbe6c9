"""YAML with positions: values plus the line and column of every key and item.

PyYAML composes the document into nodes that carry marks; we build plain Python values from them
and record ``path -> (line, column)`` (1-based) for error messages. Aliases are followed, but every
node visited counts against a budget, so an alias bomb ("billion laughs") is refused instead of
expanding; duplicate keys are errors; only one document is allowed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from composer import limits
from composer.errors import UserError

MAX_BYTES = 1 << 20
MAX_NODES = 100_000

Path_ = tuple[str | int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Located:
    value: object  # the YAML document, not yet validated
    positions: dict[Path_, tuple[int, int]]
    origin: str

    def locate(self, path: Sequence[str | int]) -> tuple[int, int]:
        """Position of ``path``, or of its longest known prefix."""
        p = tuple(path)
        while p and p not in self.positions:
            p = p[:-1]
        return self.positions.get(p, (1, 1))

    def place(self, path: Sequence[str | int]) -> str:
        line, col = self.locate(path)
        return f"{self.origin}:{line}:{col}"


def load_yaml(data: bytes, origin: str) -> Located:
    if len(data) > MAX_BYTES:
        raise UserError(f"{origin}: {len(data)} bytes, over the limit of {MAX_BYTES}",
                        hint="profiles are small; is this the right file?")
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise UserError(f"{origin}: not UTF-8 text (byte {exc.start})",
                        hint="a profile is YAML in UTF-8: save it as UTF-8 (or restore it from git)") from None
    bounds = limits.current()
    _check_depth(text, origin, bounds)
    try:
        docs = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except RecursionError:
        raise limits.exceeded(bounds, "max_depth", origin, "nested deeper than the YAML parser can go") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{origin}:{mark.line + 1}:{mark.column + 1}" if mark else origin
        raise UserError(f"{where}: invalid YAML: {exc.problem}", hint="fix the YAML syntax at that place") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{origin}: invalid YAML: {exc}") from None
    if len(docs) != 1 or docs[0] is None:
        raise UserError(f"{origin}: expected exactly one YAML document, found {len([d for d in docs if d])}",
                        hint="remove extra '---' separators")
    builder = _Builder(origin, bounds)
    value = builder.build(docs[0], ())
    return Located(value=value, positions=builder.positions, origin=origin)


_OPEN = (yaml.FlowSequenceStartToken, yaml.FlowMappingStartToken,
         yaml.BlockSequenceStartToken, yaml.BlockMappingStartToken)
_CLOSE = (yaml.FlowSequenceEndToken, yaml.FlowMappingEndToken, yaml.BlockEndToken)


def _check_depth(text: str, origin: str, bounds: limits.Limits) -> None:
    """Refuse nesting beyond ``max_depth`` while scanning, before the parser sees it.

    PyYAML's scanner does work proportional to the open flow level for every token, so thousands
    of unclosed ``[`` cost minutes; counting tokens lazily stops at the limit. Syntax errors are
    left for the composer, which reports them with their position.
    """
    depth = 0
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, _OPEN):
                depth += 1
                if depth > bounds.max_depth:
                    mark = token.start_mark
                    raise limits.exceeded(bounds, "max_depth", f"{origin}:{mark.line + 1}:{mark.column + 1}",
                                          f"nested more than {bounds.max_depth} levels deep")
            elif isinstance(token, _CLOSE):
                depth -= 1
    except yaml.YAMLError:
        return


class _Builder:
    def __init__(self, origin: str, bounds: limits.Limits) -> None:
        self.origin = origin
        self.bounds = bounds
        self.positions: dict[Path_, tuple[int, int]] = {}
        self.count = 0
        self.constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: Path_) -> object:
        self.count += 1
        if self.count > MAX_NODES:
            raise UserError(f"{self.origin}: more than {MAX_NODES} YAML nodes (an alias bomb?)",
                            hint="profiles do not need that many values; avoid deeply nested aliases")
        if len(path) >= self.bounds.max_depth:
            place = f"{self.origin}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"
            raise limits.exceeded(self.bounds, "max_depth", place, f"nested more than {len(path)} levels deep")
        self.positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            out: dict[str, object] = {}
            for key_node, value_node in node.value:
                key = self._scalar(key_node)
                if not isinstance(key, str):
                    raise UserError(f"{self.origin}:{key_node.start_mark.line + 1}:{key_node.start_mark.column + 1}: "
                                    f"keys must be strings, not {key!r}", hint="quote the key")
                if key in out:
                    raise UserError(f"{self.origin}:{key_node.start_mark.line + 1}:{key_node.start_mark.column + 1}: "
                                    f"duplicate key '{key}'", hint="each key may appear once; merge the entries")
                self.positions[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> object:
        """A plain value; an unknown tag or a number Python will not convert is an error at its place."""
        place = f"{self.origin}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            raise UserError(f"{place}: a key must be a plain value, not a mapping or a list", hint="quote the key")
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise UserError(f"{place}: {problem}", hint="profiles use plain YAML values: remove the tag") from None
        except ValueError as exc:
            raise UserError(f"{place}: {str(exc).split(';')[0]}",
                            hint="numbers this long are not meaningful in a profile; quote it if it is text") from None
