"""The hash recipe of the audit trail: how a stored row becomes the canonical JSON text that is hashed.

Public so that an independent auditor can recompute a record's hash from its stored columns
(:func:`record_hash`) without the service: the canonical JSON of every stored column but the hash
itself and the signature of the hash (sorted keys, ``(",", ":")`` separators, ``ensure_ascii=False``),
hashed with SHA-256.
:func:`canonical_keyed` and :func:`answer_keyed` write a request or an answer as it is stored, each
``person_id`` value replaced by its keyed hash.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from contextlib import suppress
from datetime import date, datetime
from enum import Enum
from typing import Any

import numpy as np
import orjson


def record_hash(row: Mapping[str, Any]) -> str:
    """SHA-256 of ``canonical_json(row)`` without ``record_hash`` and ``record_sig`` (the signer's
    signature of the hash, :mod:`serving.audit._signing`).

    A row of str, int and None (as stored) is written by orjson, whose bytes equal ``canonical_json``'s
    for these types (tests/test_audit.py checks it on arbitrary text); anything else, and what
    orjson refuses (lone surrogates, ints past 64 bits, keys that are str subclasses such as
    SQLAlchemy's ``quoted_name``), takes ``canonical_json``.
    """
    return stored_hash({k: v for k, v in row.items() if k not in UNHASHED})


def stored_hash(fields: dict[str, Any]) -> str:
    """:func:`record_hash` of ``fields``, a row already without ``record_hash`` and ``record_sig`` (the
    verifier's path: it reads millions of rows)."""
    data = None
    if set(map(type, fields.values())) <= _ROW_TYPES:
        with suppress(orjson.JSONEncodeError):
            data = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data if data is not None else canonical_json(fields).encode()).hexdigest()


_ROW_TYPES = frozenset({str, int, type(None)})
#: stored beside each record but not hashed (the signature is over the hash)
UNHASHED = frozenset({"record_hash", "record_sig"})


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


_PERSON_ID_KEY = '"person_id":'


# numpy values and dates go through plain as in the general path: orjson's own numpy option would
# write float32 as its short float32 repr (0.1, not the stored value 0.10000000149011612) and a
# datetime64 day as a datetime, and dataclasses and times would be accepted.
_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def canonical_keyed(obj: Any, key_of: Any) -> str:
    """``canonical_json(jsonable(obj, key_of))`` in meaning, without walking ``obj`` in Python when it can.

    orjson writes the canonical text once (sorted keys, compact, UTF-8, NaN and infinities as
    null; floats in their shortest repr, e.g. ``1e-7`` where ``json`` writes ``1e-07``) and each
    ``person_id`` string value is keyed in place: in compact JSON a key's opening quote follows
    ``{`` or ``,`` directly, which no quote inside a string value can (it is escaped), so only
    keys are matched. What orjson refuses (non-str keys, str-subclass keys such as StrEnum
    members, float subclasses, ints past 64 bits, lone surrogates, nesting past 255) and
    non-string person ids take the general path.
    """
    try:
        text = orjson.dumps(obj, default=plain, option=_ORJSON_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return canonical_json(jsonable(obj, key_of))
    return keyed_text(text, obj, key_of)


def answer_keyed(answer: Any, key_of: Any) -> str:
    """The stored form of an answer. Given as the JSON text (str or bytes) the client received, it is
    stored as those very bytes with only each ``person_id`` string value replaced by its key; given
    as an object, as its canonical JSON (keyed)."""
    if not isinstance(answer, (str, bytes)):
        return canonical_keyed(answer, key_of)
    text = answer.decode("utf-8") if isinstance(answer, bytes) else answer

    def refuse() -> str:
        raise ValueError("an answer's person_id must be a JSON string or null")

    return keyed_text(text, None, key_of, general=refuse)


def keyed_text(text: str, obj: Any, key_of: Any, *, general: Any = None) -> str:
    """``text``, the compact JSON of ``obj``, with each ``person_id`` string value keyed in place.

    A non-string person id takes ``general()`` (default: the canonical walk of ``obj``).
    """
    parts, pos, found = [], 0, text.find(_PERSON_ID_KEY)
    while found >= 0:
        start = found + len(_PERSON_ID_KEY)
        if found > 0 and text[found - 1] in "{," and not text.startswith("null", start):
            if text[start] != '"':
                return general() if general else canonical_json(jsonable(obj, key_of))
            # typeshed's json.decoder stub omits scanstring, a documented-by-use stdlib function since 2.6
            value, end = json.decoder.scanstring(text, start + 1)  # type: ignore[attr-defined]  # see above
            parts += [text[pos:start], json.dumps(key_of(value), ensure_ascii=False)]
            pos = end
        found = text.find(_PERSON_ID_KEY, start)
    return "".join(parts) + text[pos:] if parts else text


def jsonable(obj: Any, key_of: Any) -> Any:
    """JSON-ready copy of ``obj``: person ids keyed, numpy scalars unwrapped, NaN as None.

    The C JSON encoder and decoder walk the structure (a batch holds millions of values); Python
    runs only for the few types JSON lacks and for each dict, to key its ``person_id``.
    """

    def keyed(d: dict[str, Any]) -> dict[str, Any]:
        if d.get("person_id") is not None:
            d["person_id"] = key_of(d["person_id"])
        return d

    text = json.dumps(obj, default=plain, allow_nan=True)
    return json.loads(text, object_hook=keyed, parse_constant=lambda _: None)


def plain(obj: Any) -> Any:
    """What ``json.dumps`` cannot write itself: numpy values, dates, other mappings, and UUIDs and
    enum members (which orjson writes itself as ``str(u)`` and ``member.value``)."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, Enum):
        return obj.value
    raise TypeError(f"cannot store a {type(obj).__name__} in the audit trail")
