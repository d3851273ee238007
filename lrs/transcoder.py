"""An orjson transcoder for event state: several times faster than the library's json one."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Transcoder

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"_type_": "datetime_iso", "_data_": value.isoformat()}
    if isinstance(value, UUID):
        return {"_type_": "uuid_hex", "_data_": value.hex}
    if isinstance(value, bytes):
        return {"_type_": "bytes_b64", "_data_": base64.b64encode(value).decode()}
    raise TypeError(f"cannot encode {type(value).__name__} in an event")


def _restore(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 2 and "_type_" in value:
        kind, data = value["_type_"], value.get("_data_")
        if kind == "datetime_iso":
            return datetime.fromisoformat(str(data))
        if kind == "uuid_hex":
            return UUID(data)
        if kind == "bytes_b64":
            return base64.b64decode(str(data))
    return value


class OrjsonTranscoder(Transcoder):
    """Encodes event state with orjson.

    Typed values (datetimes, UUIDs, bytes) are only restored at the top level of an event's state,
    which is where the library puts an event's attributes; statement bodies pass through untouched.
    """

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=_default, option=_OPTIONS)

    def decode(self, data: bytes) -> Any:
        state = orjson.loads(data)
        if isinstance(state, dict):
            return {key: _restore(value) for key, value in state.items()}
        return state
