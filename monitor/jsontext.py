"""JSON text as both databases store it. Contains no business logic."""

from __future__ import annotations

import json
from typing import Any

import orjson

# orjson encodes datetimes and dataclasses itself; json refuses them. Passed through, they make
# orjson refuse too, and json then raises as it always did.
_LIKE_JSON = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class EncodedJSON(str):
    """JSON text already encoded by `encode_json` (in a parse worker): a JSON column stores it
    as it is instead of encoding the text as a JSON string."""

    __slots__ = ()

    def __reduce__(self) -> tuple[type[EncodedJSON], tuple[str]]:
        # Rebuilt by one call of the class from a parse worker's result: str subclasses
        # otherwise unpickle through copyreg, a Python function call each.
        return EncodedJSON, (str(self),)


EMPTY_LIST = EncodedJSON("[]")


def dump_json(value: Any) -> bytes:
    """`value` as compact JSON in UTF-8: `json.dumps(value, ensure_ascii=False,
    separators=(",", ":"))`, encoded.

    orjson writes it in a quarter of the time json takes: a post's content hash and raw payload
    were 23 µs of the ~300 a parse worker spends on a new post (issue 15). The bytes are the
    same, with two exceptions that no content hash meets (its numbers are integers): a float
    under 10⁻⁴ is written in another form of the same number (0.00001 and 1e-7; json writes
    1e-05 and 1e-07), and NaN and infinity as null (json writes NaN, which is not JSON and
    PostgreSQL refuses).
    What orjson refuses (integers beyond 64 bits, keys that are not strings, lone surrogates)
    json encodes, or refuses, as before.
    """
    try:
        return orjson.dumps(value, option=_LIKE_JSON)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def serialize_json(value: Any) -> str:
    """JSON for both databases: UTF-8 kept as is, and NUL characters (which PostgreSQL refuses
    in JSON and text) removed from the encoded text in one pass."""
    if type(value) is EncodedJSON:
        return value
    try:
        text = dump_json(value).decode()
    except UnicodeEncodeError:  # a lone surrogate: json keeps it in the text, as before
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("\\u0000", "")


def encode_json(value: Any) -> EncodedJSON:
    """`value` as a JSON column will store it, encoded now."""
    if isinstance(value, list) and not value:
        return EMPTY_LIST  # most posts have no links, mentions or media
    return EncodedJSON(serialize_json(value))
