"""The backup manifest's digest (deploy/backup_manifest.py) reads a sparse disk image's data
only, yet tells every changed byte, and does not depend on where the holes are."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "backup_manifest.py"
MIB = 1024 * 1024


def _manifest_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("backup_manifest", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


manifest = _manifest_module()


def _sparse_image(path: Path) -> Path:
    """A 64 MiB image holding a few scattered writes, the rest holes."""
    with path.open("wb") as image:
        image.truncate(64 * MIB)
        for offset in (0, 5 * MIB + 123, 40 * MIB - 10):
            image.seek(offset)
            image.write(b"tenant data" * 100)
    return path


def test_the_digest_ignores_where_the_holes_are(tmp_path: Path) -> None:
    sparse = _sparse_image(tmp_path / "sparse.img")
    assert sparse.stat().st_blocks * 512 < 4 * MIB
    # The same bytes with the zeros written out: as a copy without --sparse leaves them.
    dense = tmp_path / "dense.img"
    with sparse.open("rb") as source, dense.open("wb") as target:
        shutil.copyfileobj(source, target)
    assert dense.stat().st_blocks * 512 >= 64 * MIB
    assert manifest.digest(sparse) == manifest.digest(dense)


@pytest.mark.parametrize(
    ("offset", "data"),
    [(7, b"X"), (20 * MIB, b"\x01"), (64 * MIB - 1, b"\x02")],
    ids=["in-data", "in-a-hole", "last-byte"],
)
def test_the_digest_tells_a_changed_byte(tmp_path: Path, offset: int, data: bytes) -> None:
    image = _sparse_image(tmp_path / "disk.img")
    before = manifest.digest(image)
    with image.open("r+b") as changed:
        changed.seek(offset)
        changed.write(data)
    assert manifest.digest(image) != before


def test_the_digest_tells_a_longer_file_of_zeros(tmp_path: Path) -> None:
    image = _sparse_image(tmp_path / "disk.img")
    before = manifest.digest(image)
    with image.open("r+b") as longer:
        longer.truncate(65 * MIB)
    assert manifest.digest(image) != before


def test_a_restore_stops_on_a_file_that_differs(tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    (backup / "disks").mkdir(parents=True)
    _sparse_image(backup / "disks" / "t1.img")
    (backup / "env").write_text("FTA_SECRET_KEY=placeholder\n")
    manifest.write(backup, "20261206T000000Z", "0037")
    assert manifest.check(backup) == "backup of 20261206T000000Z, schema 0037"
    with (backup / "disks" / "t1.img").open("r+b") as tampered:
        tampered.seek(30 * MIB)
        tampered.write(b"?")
    with pytest.raises(SystemExit, match=r"disks/t1\.img does not match"):
        manifest.check(backup)
    (backup / "disks" / "t1.img").unlink()
    with pytest.raises(SystemExit, match=r"disks/t1\.img does not match"):
        manifest.check(backup)
