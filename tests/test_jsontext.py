"""JSON text as both databases store it (monitor/jsontext.py): orjson's bytes, where they are
json's, and json's answer where orjson would differ."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from monitor.jsontext import dump_json, serialize_json

# Characters a JSON encoder must treat with care: quotes, backslashes, every control
# character, NUL, the line and paragraph separators, non-ASCII letters and astral symbols.
ALPHABET = [chr(c) for c in range(0x20)] + list('"\\/ aåäöZ€\u2028\u2029\x7f\u00a0') + ["😀"]


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randint(-(2**63), 2**63 - 1)
    if kind in (3, 4):
        return _random_key(rng) * rng.randrange(4)
    if kind in (5, 6):
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {_random_key(rng): _random_value(rng, depth + 1) for _ in range(rng.randrange(5))}


def _random_key(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(4)))


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def test_the_bytes_are_those_of_json() -> None:
    rng = random.Random(20261206)
    for _ in range(5_000):
        value = _random_value(rng)
        assert dump_json(value) == _json(value), value


def test_floats_are_the_same_numbers() -> None:
    rng = random.Random(7)
    values = [rng.uniform(-1e9, 1e9) for _ in range(2_000)]
    values += [10 ** rng.uniform(-30, 30) for _ in range(2_000)]
    assert json.loads(dump_json(values)) == values


@pytest.mark.parametrize(
    "value",
    [
        2**70,  # beyond 64 bits: orjson refuses it
        {1: "a", "2": None},  # keys that are not strings: json writes them as strings
        [{"deep": [-(2**64)]}],
    ],
)
def test_what_orjson_refuses_json_encodes(value: Any) -> None:
    assert dump_json(value) == _json(value)
    assert serialize_json(value) == _json(value).decode()


@dataclass
class _Thing:
    name: str


@pytest.mark.parametrize("value", [datetime(2026, 12, 6, tzinfo=UTC), _Thing("a"), {1, 2}])
def test_what_json_refuses_is_refused(value: Any) -> None:
    with pytest.raises(TypeError):
        dump_json({"value": value})
    with pytest.raises(TypeError):
        serialize_json([value])


def test_nul_characters_are_removed_and_nan_is_null() -> None:
    assert serialize_json({"text": "a\x00b", "n": float("nan")}) == '{"text":"ab","n":null}'


def test_a_lone_surrogate_stays_in_the_text() -> None:
    # json.loads gives one from "\ud800" in an API's payload: it fails where the text is
    # written, as before, not here.
    assert serialize_json(["a\ud800"]) == '["a\ud800"]'
