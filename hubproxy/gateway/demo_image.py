"""The demo provider's images: a real, small PNG drawn from the prompt, with zlib and struct
only (no imaging library). Pure."""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png(prompt: str, size: int = 64) -> bytes:
    """A size×size RGB PNG: a diagonal gradient between two colours taken from the prompt's
    hash, so the same prompt draws the same image."""
    if not 1 <= size <= 1024:
        raise ValueError("size must be from 1 to 1024 pixels")
    seed = hashlib.sha256(prompt.encode("utf-8")).digest()
    a, b = seed[:3], seed[3:6]
    rows = bytearray()
    span = max(2 * (size - 1), 1)
    for y in range(size):
        rows.append(0)  # filter type: none
        for x in range(size):
            t = x + y
            rows.extend((a[i] * (span - t) + b[i] * t) // span for i in range(3))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(bytes(rows), 9)) \
        + _chunk(b"IEND", b"")  # fmt: skip


def b64_png(prompt: str, size: int = 64) -> str:
    return base64.b64encode(png(prompt, size)).decode("ascii")


def data_url(prompt: str, size: int = 64) -> str:
    """The image as a data: URL, which AIGNE's SDK and browsers read without a fetch."""
    return "data:image/png;base64," + b64_png(prompt, size)


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)
