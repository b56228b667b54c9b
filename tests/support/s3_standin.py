"""A stand-in for S3 on the loopback: moto's server, speaking S3's REST protocol, so that the
backup scripts' own boto3 client runs against it unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3
from moto.server import ThreadedMotoServer

# The stand-in accepts any credentials; the scripts' boto3 must find some.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "fta-test",
    "AWS_SECRET_ACCESS_KEY": "fta-test",  # pragma: allowlist secret
    "AWS_DEFAULT_REGION": "eu-west-3",
}


@dataclass(frozen=True)
class S3StandIn:
    endpoint: str

    def client(self) -> object:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        )

    def env(self, bucket: str, **settings: str) -> dict[str, str]:
        """What backup.sh and restore.sh are given to use this stand-in's `bucket`."""
        return {
            **CREDENTIALS,
            "FTA_BACKUP_S3_ENDPOINT": self.endpoint,
            "FTA_BACKUP_S3_BUCKET": bucket,
            **settings,
        }


@contextmanager
def s3_standin() -> Iterator[S3StandIn]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3StandIn(f"http://{host}:{port}")
    finally:
        server.stop()
