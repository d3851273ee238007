"""Streaming reader for multipart/mixed statement requests (Communication 1.5.2).

Each attachment part is hashed and written to a temporary file as it arrives, so a large
attachment is never held whole in memory; the statements part is small and kept in memory.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from lrs.errors import BadRequest, PayloadTooLarge

_HASHES = {56: hashlib.sha224, 64: hashlib.sha256, 96: hashlib.sha384, 128: hashlib.sha512}


@dataclass
class ReceivedPart:
    """One attachment part, on disk, with the hash it claimed and the hash it has."""

    number: int
    declared_hash: str
    content_type: str
    path: Path
    length: int = 0
    actual_hash: str = ""


@dataclass
class MultipartRequest:
    statements: bytes
    parts: list[ReceivedPart] = field(default_factory=list)

    def discard(self) -> None:
        for part in self.parts:
            part.path.unlink(missing_ok=True)


# RFC 2046 5.1.1: 1 to 70 of these characters, the last not a space.
_BOUNDARY = re.compile(rb"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")


def boundary_of(content_type: str) -> bytes:
    """The boundary a multipart/mixed Content-Type names, or BadRequest naming the rule."""
    _, options = parse_options_header(content_type)
    boundary = {name.lower(): value for name, value in options.items()}.get(b"boundary")
    if not boundary:
        raise BadRequest("Content-Type: multipart/mixed needs a boundary parameter")
    if not _BOUNDARY.fullmatch(boundary):
        raise BadRequest("Content-Type: the multipart boundary must be 1 to 70 characters, each a"
                         " letter, a digit or one of '()+_,-./:=? or a space, and must not end in"
                         " a space (RFC 2046 5.1.1)")
    return boundary


class _Reader:
    def __init__(self, tmp_dir: Path, max_attachment_bytes: int, max_statements_bytes: int) -> None:
        self.tmp_dir = tmp_dir
        self.max_attachment = max_attachment_bytes
        self.max_statements = max_statements_bytes
        self.number = -1
        self.headers: dict[str, str] = {}
        self.field = b""
        self.value = b""
        self.statements: bytearray | None = None
        self.statements_done = False
        self.parts: list[ReceivedPart] = []
        self._file: Any = None
        self._hash: Any = None

    # --- parser callbacks ---
    def on_part_begin(self) -> None:
        self.number += 1
        self.headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.field.decode("latin-1").strip().lower()] = self.value.decode("latin-1").strip()
        self.field, self.value = b"", b""

    def on_headers_finished(self) -> None:
        content_type = self.headers.get("content-type", "")
        if self.number == 0:
            if content_type.split(";")[0].strip().lower() != "application/json":
                raise BadRequest("multipart: the first part must be the statements, as"
                                 f" application/json (got '{content_type or 'no Content-Type'}')")
            self.statements = bytearray()
            return
        where = f"multipart part {self.number}"
        declared = self.headers.get("x-experience-api-hash", "").lower()
        if not declared:
            raise BadRequest(f"{where}: has no X-Experience-API-Hash header")
        if declared and len(declared) not in _HASHES:
            raise BadRequest(f"{where}: X-Experience-API-Hash '{declared}' is not a SHA-2 hex digest")
        if self.headers.get("content-transfer-encoding", "").lower() != "binary":
            raise BadRequest(f"{where}: Content-Transfer-Encoding must be binary")
        fd, name = tempfile.mkstemp(dir=self.tmp_dir, prefix="part-")
        self._file = os.fdopen(fd, "wb")
        self._hash = _HASHES[len(declared)]()
        self.parts.append(ReceivedPart(self.number, declared, content_type or
                                       "application/octet-stream", Path(name)))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self.number == 0 and self.statements is not None:
            self.statements += chunk
            if len(self.statements) > self.max_statements:
                raise PayloadTooLarge(f"multipart: the statements part exceeds {self.max_statements}"
                                      " bytes (LRS_MAX_BODY_BYTES)")
            return
        part = self.parts[-1]
        part.length += len(chunk)
        if part.length > self.max_attachment:
            raise PayloadTooLarge(f"multipart part {part.number} (X-Experience-API-Hash"
                                  f" {part.declared_hash}) exceeds the attachment limit of"
                                  f" {self.max_attachment} bytes (LRS_MAX_ATTACHMENT_BYTES)")
        self._hash.update(chunk)
        self._file.write(chunk)

    def on_part_end(self) -> None:
        if self.number == 0:
            self.statements_done = True
        elif self._file is not None:
            self._file.close()
            self._file = None
            self.parts[-1].actual_hash = self._hash.hexdigest()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


async def read_multipart(chunks: AsyncIterator[bytes], content_type: str, tmp_dir: Path,
                         max_attachment_bytes: int, max_statements_bytes: int) -> MultipartRequest:
    """Read the whole request; on any error, nothing read is left behind."""
    reader = _Reader(tmp_dir, max_attachment_bytes, max_statements_bytes)
    callbacks: Any = {name: getattr(reader, name) for name in (
        "on_part_begin", "on_header_field", "on_header_value", "on_header_end",
        "on_headers_finished", "on_part_data", "on_part_end")}
    parser = MultipartParser(boundary_of(content_type), callbacks)
    try:
        async for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
        if reader.statements is None or not reader.statements_done:
            raise BadRequest("multipart: the body ended before its closing boundary, or had no parts")
    except MultipartParseError as exc:
        reader.close()
        MultipartRequest(b"", reader.parts).discard()
        raise BadRequest(f"multipart: malformed body ({exc})") from None
    except BaseException:
        reader.close()
        MultipartRequest(b"", reader.parts).discard()
        raise
    return MultipartRequest(bytes(reader.statements), reader.parts)


def check_part_hashes(parts: list[ReceivedPart]) -> None:
    for part in parts:
        if part.actual_hash != part.declared_hash:
            raise BadRequest(f"multipart part {part.number}: its content hashes to"
                             f" {part.actual_hash}, not the X-Experience-API-Hash"
                             f" {part.declared_hash} it declares")
