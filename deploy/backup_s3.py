"""Backups to and from S3, for deploy/backup.sh and deploy/restore.sh; runs on the host's
python3 with boto3 (deploy/install.sh installs it). Credentials come from boto3's usual chain:
on EC2, the instance's role, so no key is kept on the host.

Each backup is uploaded under the prefix with its own name, encrypted at rest by S3 on top of
its GnuPG encryption, then checked by size; the newest FTA_BACKUP_S3_KEEP backups under the
prefix stay, older ones are deleted (a bucket lifecycle rule may move them to colder storage
first).

env: FTA_BACKUP_S3_BUCKET    the bucket (required)
     FTA_BACKUP_S3_PREFIX    the key prefix (default fta-backups/)
     FTA_BACKUP_S3_KEEP      how many backups to keep there (default 30)
     FTA_BACKUP_S3_ENDPOINT  another endpoint than AWS's (an S3-compatible store)
     AWS_REGION / AWS_DEFAULT_REGION, and the credentials' usual variables or files
usage: backup_s3.py upload FILE | fetch s3://BUCKET/KEY DEST
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

BACKUP_NAME = re.compile(r"fta-backup-[0-9TZ]+\.tar\.gpg")


def _client() -> Any:
    import boto3

    endpoint = os.environ.get("FTA_BACKUP_S3_ENDPOINT") or None
    return boto3.client("s3", endpoint_url=endpoint)


def _setting(name: str, default: str | None = None) -> str:
    value = os.environ.get(name) or default
    if value is None:
        sys.exit(f"backup: {name} is not set")
    return value


def upload(path: Path) -> str:
    """Uploads the backup, checks it arrived whole, applies the retention; its URL."""
    if not BACKUP_NAME.fullmatch(path.name):
        sys.exit(f"backup: {path.name} is not a backup's name")
    bucket = _setting("FTA_BACKUP_S3_BUCKET")
    prefix = _setting("FTA_BACKUP_S3_PREFIX", "fta-backups/")
    keep = _setting("FTA_BACKUP_S3_KEEP", "30")
    if not keep.isdigit() or int(keep) < 1:
        sys.exit("backup: FTA_BACKUP_S3_KEEP is a whole number, 1 or more")
    s3 = _client()
    key = f"{prefix}{path.name}"
    # upload_file goes multipart past 8 MiB; S3 encrypts each part at rest.
    s3.upload_file(str(path), bucket, key, ExtraArgs={"ServerSideEncryption": "AES256"})
    stored = s3.head_object(Bucket=bucket, Key=key)
    if stored["ContentLength"] != path.stat().st_size:
        sys.exit(f"backup: s3://{bucket}/{key} holds {stored['ContentLength']} bytes, not all")
    names = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        names += [o["Key"] for o in page.get("Contents", []) if _is_backup(o["Key"], prefix)]
    # Names carry their UTC time: the newest sort last.
    for old in sorted(names)[: -int(keep)]:
        s3.delete_object(Bucket=bucket, Key=old)
    return f"s3://{bucket}/{key}"


def _is_backup(key: str, prefix: str) -> bool:
    return BACKUP_NAME.fullmatch(key[len(prefix) :]) is not None


def fetch(url: str, destination: Path) -> None:
    match = re.fullmatch(r"s3://([^/]+)/(.+)", url)
    if match is None:
        sys.exit(f"restore: {url} is not an s3://BUCKET/KEY address")
    _client().download_file(match.group(1), match.group(2), str(destination))


def main(argv: list[str]) -> None:
    try:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        sys.exit("boto3 is missing: install python3-boto3 (deploy/install.sh does)")
    try:
        if len(argv) == 2 and argv[0] == "upload":
            print(f"backup: uploaded to {upload(Path(argv[1]))}", file=sys.stderr)
        elif len(argv) == 3 and argv[0] == "fetch":
            fetch(argv[1], Path(argv[2]))
        else:
            sys.exit("usage: backup_s3.py upload FILE | fetch s3://BUCKET/KEY DEST")
    except (Boto3Error, BotoCoreError, ClientError) as error:
        sys.exit(f"{'backup' if argv[0] == 'upload' else 'restore'}: S3: {error}")


if __name__ == "__main__":
    main(sys.argv[1:])
