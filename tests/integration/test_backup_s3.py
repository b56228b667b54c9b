"""Backups off the host (deploy/backup_s3.py, as backup.sh and restore.sh run it, on the
host's python3 and its boto3) against a stand-in S3 on the loopback: uploaded encrypted at
rest and whole, the newest kept, fetched back byte for byte; S3's refusals are clear errors."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.s3_standin import S3StandIn, s3_standin
from tests.support.stack import REPO, clean_environment

SCRIPT = REPO / "deploy" / "backup_s3.py"
BUCKET = "fta-backups-test"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3StandIn]:
    with s3_standin() as standin:
        client: Any = standin.client()
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-3"}
        )
        yield standin


def _script(s3: S3StandIn, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    # The host's python3, as the deploy scripts run it: not this test's venv.
    return subprocess.run(
        ["/usr/bin/python3", str(SCRIPT), *args],
        env=clean_environment(**s3.env(settings.pop("bucket", BUCKET), **settings)),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _backup(directory: Path, stamp: str, size: int) -> Path:
    path = directory / f"fta-backup-{stamp}.tar.gpg"
    path.write_bytes(os.urandom(size))
    return path


def test_backups_are_uploaded_whole_encrypted_at_rest_and_the_newest_kept(
    s3: S3StandIn, tmp_path: Path
) -> None:
    prefix = f"host-{secrets.token_hex(3)}/"
    client: Any = s3.client()
    client.put_object(Bucket=BUCKET, Key=f"{prefix}notes.txt", Body=b"the operator's")
    stamps = ["20261201T030000Z", "20261202T030000Z", "20261203T030000Z"]
    # Past 8 MiB: a multipart upload.
    sizes = [1024, 9 * 1024 * 1024, 4096]
    for stamp, size in zip(stamps, sizes, strict=True):
        done = _script(
            s3,
            "upload",
            str(_backup(tmp_path, stamp, size)),
            FTA_BACKUP_S3_PREFIX=prefix,
            FTA_BACKUP_S3_KEEP="2",
        )
        assert done.returncode == 0, done.stderr
        assert f"uploaded to s3://{BUCKET}/{prefix}fta-backup-{stamp}.tar.gpg" in done.stderr
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]
    assert sorted(o["Key"] for o in listed) == [
        f"{prefix}fta-backup-{stamps[1]}.tar.gpg",
        f"{prefix}fta-backup-{stamps[2]}.tar.gpg",
        f"{prefix}notes.txt",
    ]
    stored = client.head_object(Bucket=BUCKET, Key=f"{prefix}fta-backup-{stamps[1]}.tar.gpg")
    assert stored["ServerSideEncryption"] == "AES256"
    assert stored["ContentLength"] == sizes[1]

    fetched = tmp_path / "fetched.tar.gpg"
    url = f"s3://{BUCKET}/{prefix}fta-backup-{stamps[1]}.tar.gpg"
    done = _script(s3, "fetch", url, str(fetched))
    assert done.returncode == 0, done.stderr
    assert fetched.read_bytes() == (tmp_path / f"fta-backup-{stamps[1]}.tar.gpg").read_bytes()


@pytest.mark.parametrize(
    ("args", "settings", "error"),
    [
        (["upload", "{backup}"], {"bucket": "no-such-bucket"}, "backup: S3: "),
        (["upload", "{other}"], {}, "is not a backup's name"),
        (["upload", "{backup}"], {"FTA_BACKUP_S3_KEEP": "0"}, "FTA_BACKUP_S3_KEEP"),
        (["fetch", "s3://fta-backups-test/none.tar.gpg", "{dest}"], {}, "restore: S3: "),
        (["fetch", "https://example.com/x", "{dest}"], {}, "not an s3://BUCKET/KEY"),
    ],
    ids=["no-bucket", "not-a-backup", "keep-zero", "no-such-key", "not-s3"],
)
def test_a_refusal_is_one_clear_line(
    s3: S3StandIn, tmp_path: Path, args: list[str], settings: dict[str, str], error: str
) -> None:
    paths = {
        "backup": str(_backup(tmp_path, "20261204T030000Z", 100)),
        "other": str(tmp_path / "notes.txt"),
        "dest": str(tmp_path / "out"),
    }
    (tmp_path / "notes.txt").write_text("x")
    done = _script(s3, *(a.format(**paths) for a in args), **settings)
    assert done.returncode == 1
    assert error in done.stderr and "Traceback" not in done.stderr, done.stderr
