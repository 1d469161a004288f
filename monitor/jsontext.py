"""JSON text as both databases store it. Contains no business logic."""

from __future__ import annotations

import json
from typing import Any


class EncodedJSON(str):
    """JSON text already encoded by `encode_json` (in a parse worker): a JSON column stores it
    as it is instead of encoding the text as a JSON string."""

    __slots__ = ()

    def __reduce__(self) -> tuple[type[EncodedJSON], tuple[str]]:
        # Rebuilt by one call of the class from a parse worker's result: str subclasses
        # otherwise unpickle through copyreg, a Python function call each.
        return EncodedJSON, (str(self),)


EMPTY_LIST = EncodedJSON("[]")


def serialize_json(value: Any) -> str:
    """JSON for both databases: UTF-8 kept as is, and NUL characters (which PostgreSQL refuses
    in JSON and text) removed from the encoded text in one pass."""
    if type(value) is EncodedJSON:
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("\\u0000", "")


def encode_json(value: Any) -> EncodedJSON:
    """`value` as a JSON column will store it, encoded now."""
    if isinstance(value, list) and not value:
        return EMPTY_LIST  # most posts have no links, mentions or media
    return EncodedJSON(serialize_json(value))
