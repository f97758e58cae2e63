"""Hostile files: a decompression-bomb PNG, and entries named like images that are not regular files."""
import os
from pathlib import Path


def write_huge_png(path, width, height):
    """A valid 8-bit grey PNG of width x height black pixels, streamed to disk in a few MB of memory: one zlib
    block of rows, compressed from a reset state (a full flush), is repeated, then the remaining rows; the
    Adler-32 of the whole stream is computed block by block. 40000x40000 (1.6 gigapixels) takes 1.5 MB on disk
    and about a second; any decoder reading it would need the full width x height bytes."""
    import struct
    import zlib

    def chunk(f, kind, data):
        f.write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind))))

    row = bytes(width + 1)  # filter byte 0 + a row of zeros
    per_block = max(1, (1 << 22) // len(row))
    blocks, rest = divmod(height, per_block)
    block = row * per_block
    first = zlib.compressobj(9, zlib.DEFLATED, -15)
    repeated = first.compress(block) + first.flush(zlib.Z_FULL_FLUSH)
    last = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = last.compress(row * rest) + last.flush()
    adler = 1
    for _ in range(blocks):
        adler = zlib.adler32(block, adler)
    adler = zlib.adler32(row * rest, adler)
    path = Path(path)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        chunk(f, b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        chunk(f, b"IDAT", b"\x78\x01")  # zlib header: deflate, 32 KB window
        for _ in range(blocks):
            chunk(f, b"IDAT", repeated)
        chunk(f, b"IDAT", tail + struct.pack(">I", adler))
        chunk(f, b"IEND", b"")
    return path


def make_special_files(root):
    """Real entries that are not regular files, named like images: a FIFO, a UNIX socket, a folder, and a
    symbolic link to /dev/zero. Returns ({name: path}, the bound socket, to close at the end)."""
    import socket

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    os.mkfifo(root / "fifo.png")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(root / "socket.png"))
    (root / "folder.png").mkdir()
    (root / "zero.png").symlink_to("/dev/zero")
    names = {"fifo.png": "a FIFO (named pipe)", "socket.png": "a socket", "folder.png": "a folder",
             "zero.png": "a character device"}
    return {name: (root / name, kind) for name, kind in names.items()}, sock
