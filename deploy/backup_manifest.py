"""A backup's manifest: each file's digest, written by deploy/backup.sh, checked by
deploy/restore.sh. Standard library only: it runs on the host's own python3.

A tenant's disk image is a sparse file of hundreds of MiB holding a few: hashing it whole
would hash its holes' zeros, most of a backup's time. The digest reads only the file's data
(SEEK_DATA) and covers its size and each 64 KiB block, by offset, that is not all zeros; so
it does not depend on where the file system keeps holes, which a copy or tar may change.

usage: backup_manifest.py write DIR CREATED_AT REVISION | check DIR
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

BLOCK = 64 * 1024
ZEROS = bytes(BLOCK)
MANIFEST = "manifest.json"


def _data_blocks(fd: int, size: int) -> list[int]:
    """The offsets of the aligned blocks that hold some of the file's data, in order."""
    blocks: list[int] = []
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError:  # ENXIO: nothing but a hole from `offset` on
            break
        end = os.lseek(fd, start, os.SEEK_HOLE)
        first = start - start % BLOCK
        blocks.extend(b for b in range(first, end, BLOCK) if not blocks or b > blocks[-1])
        offset = end
    return blocks


def digest(path: Path) -> str:
    """SHA-256 of the file's size and of its non-zero blocks with their offsets."""
    sha = hashlib.sha256()
    with path.open("rb") as file:
        fd = file.fileno()
        size = os.fstat(fd).st_size
        sha.update(b"size:%d\n" % size)
        for offset in _data_blocks(fd, size):
            block = os.pread(fd, BLOCK, offset)
            if block != ZEROS[: len(block)]:
                sha.update(b"block:%d:%d\n" % (offset, len(block)))
                sha.update(block)
    return sha.hexdigest()


def write(directory: Path, created_at: str, revision: str) -> None:
    files = {
        str(path.relative_to(directory)): digest(path)
        for path in sorted(p for p in directory.rglob("*") if p.is_file())
    }
    manifest = {
        "created_at": created_at,
        "schema_revision": revision,
        "digest": "sha256 of size and non-zero 64 KiB blocks (deploy/backup_manifest.py)",
        "files": files,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")


def check(directory: Path) -> str:
    """Exits with the first file that differs from the manifest, or is missing; otherwise
    the backup's description."""
    manifest = json.loads((directory / MANIFEST).read_text())
    for name, expected in manifest["files"].items():
        path = directory / name
        if not path.is_file() or digest(path) != expected:
            sys.exit(f"restore: {name} does not match the backup's manifest")
    return f"backup of {manifest['created_at']}, schema {manifest['schema_revision']}"


def main(argv: list[str]) -> None:
    if len(argv) == 4 and argv[0] == "write":
        write(Path(argv[1]), argv[2], argv[3])
    elif len(argv) == 2 and argv[0] == "check":
        print(f"restore: {check(Path(argv[1]))}")
    else:
        sys.exit(__doc__.rsplit("usage: ", 1)[1] if __doc__ else "bad arguments")


if __name__ == "__main__":
    main(sys.argv[1:])
