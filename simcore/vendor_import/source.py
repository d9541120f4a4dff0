"""Where a vendor file's bytes come from: a file on disk as it is (the CLI's), or an upload
sealed at rest (simcore.sealed_file.SealedSource), read through a decrypting stream. The parser,
the hash and the second reading process open a `Source` and see the same clear bytes either way,
so line and column positions do not depend on where the file is kept."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable


@runtime_checkable
class Source(Protocol):
    """A vendor file: `path` names it (format, batch name, reports), `open()` gives its clear
    bytes from the start, `size()` their number. Picklable."""

    @property
    def path(self) -> Path: ...

    def open(self) -> BinaryIO: ...

    def size(self) -> int: ...


@dataclass(frozen=True)
class FileSource:
    """A vendor file on disk, read as it is."""

    path: Path

    def open(self) -> BinaryIO:
        return open(self.path, "rb")

    def size(self) -> int:
        return self.path.stat().st_size


def source_of(file: Path | str | Source) -> Source:
    """A path becomes a FileSource; a Source stays what it is."""
    if isinstance(file, (str, Path)):
        return FileSource(Path(file))
    return file
