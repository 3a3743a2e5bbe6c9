"""limits.json_depth (found in C passes) against the token walk it replaced, on random and hostile texts."""

from __future__ import annotations

import json
import random
import re

import pytest

from composer.limits import _drop_escapes, json_depth

_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)


def token_walk(raw: bytes) -> int:
    depth = deepest = 0
    for match in _TOKENS.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in (b"]", b"}"):
            depth -= 1
    return deepest


def test_same_depth_as_the_token_walk_for_every_valid_json_text() -> None:
    rng = random.Random(7)
    alphabet = b'[]{}"\\ax,:'
    checked = 0
    for _ in range(20000):
        text = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        try:
            json.loads(text)
        except ValueError:
            continue
        checked += 1
        assert json_depth(text) == token_walk(text), text
    assert checked > 50


def random_value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(4 if depth < 12 else 2)
    if kind == 0:
        return "".join(rng.choice('[]{}"\\a\n') for _ in range(rng.randint(0, 6)))
    if kind == 1:
        return rng.randint(-5, 5)
    if kind == 2:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {random_value(rng, 99).__str__(): random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def test_same_depth_as_the_token_walk_for_random_documents() -> None:
    rng = random.Random(11)
    for _ in range(3000):
        text = json.dumps(random_value(rng), ensure_ascii=rng.random() < 0.5).encode()
        assert json_depth(text) == token_walk(text), text


@pytest.mark.parametrize("value", [
    [], {}, "", [[{"a": "]]}}[[\\\"["}]], {"a": [1, {"b": [[[]]]}], "c": "\\\\"}, ["\\\\\\\"]", [["\"{"]]],
    {"x": "\u00e9[", "y": [{"z": {}}] * 3}])
def test_depth_of_documents(value: object) -> None:
    text = json.dumps(value, ensure_ascii=False)
    assert json_depth(text) == json_depth(text.encode()) == token_walk(text.encode())


@pytest.mark.parametrize("depth", [1, 2, 63, 64, 65, 300, 20000])
def test_deep_nesting_is_counted_exactly(depth: int) -> None:
    assert json_depth(b"[" * depth + b"]" * depth) == depth
    assert json_depth(b'{"a":' * depth + b"1" + b"}" * depth) == depth


def test_unbalanced_and_unterminated_texts_still_report_their_depth() -> None:
    assert json_depth(b"[" * 5000) == 5000
    assert json_depth(b"[" * 100 + b"]") == 100
    assert json_depth(b'[["]]]') == 2


def test_escapes_are_dropped_as_a_parser_reads_them() -> None:
    escape = re.compile(rb"\\.", re.DOTALL)
    rng = random.Random(5)
    for _ in range(20000):
        text = bytes(rng.choice(b'\\a"[') for _ in range(rng.randint(0, 12)))
        assert _drop_escapes(text) == escape.sub(b"", text), text
    many = b'"\\n"' * 20000   # past the split path: one regex pass
    assert _drop_escapes(many) == b'""' * 20000
