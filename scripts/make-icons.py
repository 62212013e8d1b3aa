"""Draws the add-in's icons (PNG, no imaging library needed): a Fluent-blue tile with a white
envelope, at the sizes Outlook's manifests ask for. Run once; the PNGs are committed.

    python scripts/make-icons.py
"""

from __future__ import annotations

import os
import struct
import zlib

BLUE = (15, 108, 189, 255)
WHITE = (255, 255, 255, 255)
CLEAR = (0, 0, 0, 0)
OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "addin", "static", "icons")


def png(path: str, size: int, pixel) -> None:
    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y, size)) for x in range(size)) for y in range(size))
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as handle:
        handle.write(data)


def envelope(x: int, y: int, size: int, fg, bg, outline_only: bool = False):
    left, right, top, bottom = size * 0.2, size * 0.8, size * 0.3, size * 0.7
    stroke = max(1.0, size / 16)
    inside = left <= x < right and top <= y < bottom
    if not inside:
        return bg
    # The flap: two lines from the top corners meeting in the middle.
    middle = size / 2
    flap_y = top + (bottom - top) * 0.55 * (1 - abs(x - middle) / (middle - left))
    on_flap = abs(y - flap_y) < stroke
    on_edge = x < left + stroke or x >= right - stroke or y < top + stroke or y >= bottom - stroke
    if outline_only:
        return fg if on_flap or on_edge else bg
    return BLUE if on_flap else fg


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    for size in (16, 25, 32, 48, 64, 80, 128, 192):  # 25, 32 and 48: Outlook on phones (MobileIconList)
        png(os.path.join(OUT, f"icon-{size}.png"), size, lambda x, y, s: envelope(x, y, s, WHITE, BLUE))
    # The unified manifest's outline icon: white on transparent, 32 px.
    png(os.path.join(OUT, "outline-32.png"), 32, lambda x, y, s: envelope(x, y, s, WHITE, CLEAR, outline_only=True))


if __name__ == "__main__":
    main()
