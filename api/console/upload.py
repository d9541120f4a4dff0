"""A multipart/form-data upload (RFC 7578) streamed to disk, size-limited, with the form's small
fields kept in memory: what the console's vendor-file form sends.

python-multipart's push parser takes the body chunk by chunk as the browser sends it, so memory
holds one chunk whatever the file's size (Starlette's own form parsing is not used: its
UploadFile spools parts over 1 MiB to a temporary file in clear). The file is sealed as it
arrives into `<home>/imports/` (the API's upload place: simcore.import_uploads, under a data key
the HSM made for it) and stops with an InvalidInput at `limit` bytes, the partial file deleted;
its SHA-256 is computed on the way. Only one file part is taken; fields are at most 4 KiB each,
20 in all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from simcore import import_jobs
from simcore.errors import InvalidInput
from simcore.import_uploads import SealedUpload

FIELD_MAX = 4096
FIELDS_MAX = 20


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    sealed: SealedUpload | None = None
    size: int = 0
    digest: Any = field(default_factory=hashlib.sha256)  # of the file, as it arrives

    @property
    def sha256(self) -> str:
        return str(self.digest.hexdigest())

    def discard(self) -> None:
        if self.sealed is not None:
            self.sealed.discard()


class _Receiver:
    def __init__(self, home: Path, limit: int, file_field: str,
                 seal: Callable[[Path], SealedUpload]) -> None:
        self.home, self.limit, self.file_field, self.seal = home, limit, file_field, seal
        self.up = Upload()
        self._headers: dict[bytes, bytes] = {}
        self._name: bytes = b""
        self._value: bytes = b""
        self._part: str = ""
        self._kind = ""  # "field", "file" or "skip"
        self._out: SealedUpload | None = None
        self.error: InvalidInput | None = None

    def callbacks(self) -> dict[str, Any]:
        return {"on_part_begin": self.part_begin, "on_header_field": self.header_field,
                "on_header_value": self.header_value, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
                "on_part_end": self.part_end}

    def part_begin(self) -> None:
        self._headers, self._name, self._value, self._part = {}, b"", b"", ""

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def header_end(self) -> None:
        self._headers[self._name.lower()] = self._value
        self._name, self._value = b"", b""

    def headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        self._part = name
        if filename is not None and name == self.file_field and self.up.sealed is None:
            fname = filename.decode("utf-8", "replace")
            if fname:
                self.up.filename = fname[:255]
                self.up.sealed = self._out = self.seal(import_jobs.upload_path(self.home, fname))
                self._kind = "file"
                return
        if filename is not None or len(self.up.fields) >= FIELDS_MAX:
            self._kind = "skip"
        else:
            self._kind = "field"
            self.up.fields[name] = ""

    def part_data(self, data: bytes, start: int, end: int) -> None:
        n = end - start
        if self._kind == "file" and self._out is not None:
            self.up.size += n
            if self.up.size > self.limit:
                self.error = InvalidInput("file", "file too large",
                                          expected=f"at most {self.limit} bytes")
                raise self.error
            self._out.write(data[start:end])
            self.up.digest.update(data[start:end])
        elif self._kind == "field":
            value = self.up.fields[self._part] + data[start:end].decode("utf-8", "replace")
            if len(value) > FIELD_MAX:
                self.error = InvalidInput(self._part, "form field too long",
                                          expected=f"at most {FIELD_MAX} characters")
                raise self.error
            self.up.fields[self._part] = value

    def part_end(self) -> None:
        if self._out is not None:
            self._out.finish()
            self._out = None
        self._kind = ""

    def close(self) -> None:
        if self._out is not None:
            self._out.finish()
            self._out = None


async def receive_upload(request: Request, home: Path, *, limit: int,
                         seal: Callable[[Path], SealedUpload],
                         file_field: str = "file") -> Upload:
    """The form's fields and its one file, sealed under `home`/imports as it arrives by
    `seal(path)` (simcore.import_uploads.begin with the HSM)."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise InvalidInput("content-type", "not a multipart form", expected="multipart/form-data")
    r = _Receiver(home, limit, file_field, seal)
    parser = MultipartParser(boundary, r.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except Exception as e:
        r.close()
        r.up.discard()
        if r.error is not None:
            raise r.error from None
        raise InvalidInput("body", "malformed multipart form",
                           expected="multipart/form-data") from e
    r.close()
    return r.up
