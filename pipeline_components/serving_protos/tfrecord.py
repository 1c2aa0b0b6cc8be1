"""Read TFRecord files without TensorFlow (the orchestrator reads the fleet's request logs with it).

A record is ``uint64 length | uint32 masked CRC-32C of length | data | uint32 masked CRC-32C of data``, little
endian (tensorflow/core/lib/io/record_writer.h). The length's checksum is verified, so a file that is not a
TFRecord file, or one cut in the middle of a record, is an error that names the file and the offset; the data's
checksum is not (Python has no fast CRC-32C, and these files are renamed into place only once they are whole).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from pipeline_components.errors import RunwayError

_MASK_DELTA = 0xA282EAD8


class TFRecordError(RunwayError):
    """A file is not a whole TFRecord file."""


@cache
def _table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C of ``data`` (cheap for the 8 bytes of a length; slow for megabytes)."""
    table, crc = _table(), 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def read_records(path: str | Path) -> Iterator[bytes]:
    """Every record of a TFRecord file, in order.

    Raises:
        TFRecordError: the file is not a TFRecord file, or it ends inside a record.
    """
    with open(path, "rb") as file:
        offset = 0
        while header := file.read(12):
            if len(header) < 12:
                raise TFRecordError(f"{path}: cut inside a record header at byte {offset}")
            length, length_crc = struct.unpack("<QI", header)
            if masked_crc32c(header[:8]) != length_crc:
                raise TFRecordError(f"{path}: not a TFRecord file (bad length checksum at byte {offset})")
            data = file.read(length + 4)
            if len(data) < length + 4:
                raise TFRecordError(f"{path}: cut inside a record at byte {offset} (expected {length} bytes)")
            yield data[:length]
            offset += 12 + length + 4
