"""A zip archive written entry by entry in memory that does not grow with the entries.

zipfile keeps a ZipInfo for every entry until it writes the central directory, last: with its
name and numbers nearly 500 bytes an entry, 50 MB for an export of 100,000 lines and ten times
that for a million. Here each entry's central directory record goes to a temporary file as soon
as the entry is written, and is copied after the last one. Sizes, offsets and counts past what
32 and 16 bits hold are written as ZIP64, where zipfile would (from 2 GiB and 65,535 entries),
so zipfile, unzip and the archivers of Windows and macOS read the result.

`zip_chunks` writes one as a stream of bytes, for a download that is sent while it is written.
"""

import shutil
import struct
import tempfile
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Protocol

# zipfile's thresholds: 2 GiB, not 4, for readers that take the 32-bit fields as signed.
LIMIT = (1 << 31) - 1
COUNT_LIMIT = (1 << 16) - 1
MARK = 0xFFFFFFFF  # "see the ZIP64 extra field"
CHUNK = 1 << 20
STORED, DEFLATED = 0, 8
UTF8_NAME = 0x800
UNIX, FILE_MODE = 3, 0o644 << 16


class Stream(Protocol):
    def write(self, data: bytes, /) -> int: ...
    def tell(self) -> int: ...
    def close(self) -> None: ...


class ZipWriter:
    def __init__(self, target: Path | Stream) -> None:
        """Into a file, or into a stream that can `write` and `tell`; `write()`, which seeks
        back to a file's header, needs a file."""
        # Both closed by close(), or by the with block the writer is used in.
        if isinstance(target, Path):
            self._out = target.open("wb")  # noqa: SIM115
            self._directory = tempfile.TemporaryFile(dir=target.parent)  # noqa: SIM115
        else:
            self._out = target
            self._directory = tempfile.TemporaryFile()  # noqa: SIM115
        self._count = 0
        year, month, day, hour, minute, second = time.localtime()[:6]
        self._time = (hour << 11) | (minute << 5) | (second // 2)
        self._date = ((year - 1980) << 9) | (month << 5) | day

    def __enter__(self) -> "ZipWriter":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self._directory.close()
            self._out.close()

    def writestr(self, name: str, data: bytes, *, compress: bool) -> None:
        crc = zlib.crc32(data)
        stored = _deflate(data) if compress else data
        offset = self._out.tell()
        zip64 = len(data) > LIMIT or len(stored) > LIMIT
        self._out.write(self._local_header(name, compress, crc, len(stored), len(data), zip64))
        self._out.write(stored)
        self._record(name, compress, crc, len(stored), len(data), offset, zip64)

    def write(self, name: str, path: Path, *, compress: bool) -> None:
        """The file copied in chunks; its header is written again once its CRC is known."""
        size = path.stat().st_size
        # Deflate can make incompressible data a little larger, as zipfile allows for.
        zip64 = size * 1.05 > LIMIT
        offset = self._out.tell()
        self._out.write(self._local_header(name, compress, 0, 0, 0, zip64))
        crc, stored = 0, 0
        deflater = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        with path.open("rb") as source:
            while chunk := source.read(CHUNK):
                crc = zlib.crc32(chunk, crc)
                if compress:
                    chunk = deflater.compress(chunk)
                stored += len(chunk)
                self._out.write(chunk)
        if compress:
            tail = deflater.flush()
            stored += len(tail)
            self._out.write(tail)
        if not zip64 and stored > LIMIT:
            raise OSError(f"{name} deflated to more than 2 GiB from {size} bytes")
        end = self._out.tell()
        self._out.seek(offset)
        self._out.write(self._local_header(name, compress, crc, stored, size, zip64))
        self._out.seek(end)
        self._record(name, compress, crc, stored, size, offset, zip64)

    def close(self) -> None:
        start = self._out.tell()
        self._directory.seek(0)
        shutil.copyfileobj(self._directory, self._out)
        self._directory.close()
        size = self._out.tell() - start
        count = self._count
        if count > COUNT_LIMIT or size > LIMIT or start > LIMIT:
            here = self._out.tell()
            self._out.write(
                struct.pack(
                    "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, start
                )
            )
            self._out.write(struct.pack("<4sLQL", b"PK\x06\x07", 0, here, 1))
            count, size, start = min(count, 0xFFFF), min(size, MARK), min(start, MARK)
        self._out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, size, start, 0))
        self._out.close()

    def _local_header(
        self, name: str, compress: bool, crc: int, stored: int, size: int, zip64: bool
    ) -> bytes:
        encoded, flags = _encode(name)
        extra = struct.pack("<2H2Q", 1, 16, size, stored) if zip64 else b""
        return (
            struct.pack(
                "<4s5H3L2H",
                b"PK\x03\x04",
                45 if zip64 else 20,
                flags,
                DEFLATED if compress else STORED,
                self._time,
                self._date,
                crc,
                MARK if zip64 else stored,
                MARK if zip64 else size,
                len(encoded),
                len(extra),
            )
            + encoded
            + extra
        )

    def _record(
        self,
        name: str,
        compress: bool,
        crc: int,
        stored: int,
        size: int,
        offset: int,
        zip64_header: bool,
    ) -> None:
        encoded, flags = _encode(name)
        # Only the fields that overflow go to the ZIP64 field, in this order.
        large = [value for value in (size, stored, offset) if value > LIMIT]
        extra = struct.pack(f"<2H{len(large)}Q", 1, 8 * len(large), *large) if large else b""
        version = 45 if large or zip64_header else 20
        self._directory.write(
            struct.pack(
                "<4s4B4HL2L5H2L",
                b"PK\x01\x02",
                45,
                UNIX,
                version,
                0,
                flags,
                DEFLATED if compress else STORED,
                self._time,
                self._date,
                crc,
                MARK if stored > LIMIT else stored,
                MARK if size > LIMIT else size,
                len(encoded),
                len(extra),
                0,
                0,
                0,
                FILE_MODE,
                MARK if offset > LIMIT else offset,
            )
            + encoded
            + extra
        )
        self._count += 1


class _Pipe:
    """The bytes a ZipWriter wrote since they were last taken, and how many it wrote in all."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._written = 0

    def write(self, data: bytes) -> int:
        self._buffer += data
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


def zip_chunks(entries: Iterable[tuple[str, bytes]]) -> Iterator[bytes]:
    """A zip of the (name, data) entries, deflated, as it is written: one chunk an entry, then
    the central directory. What it holds at a time is one entry, whatever their number."""
    pipe = _Pipe()
    with ZipWriter(pipe) as archive:
        for name, data in entries:
            archive.writestr(name, data, compress=True)
            yield pipe.take()
    yield pipe.take()


def _encode(name: str) -> tuple[bytes, int]:
    try:
        return name.encode("ascii"), 0
    except UnicodeEncodeError:
        return name.encode("utf-8"), UTF8_NAME


def _deflate(data: bytes) -> bytes:
    deflater = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    return deflater.compress(data) + deflater.flush()
