"""A cold `make up`, as on a new host: no fta image, no Docker build cache, no wheel cache; the
base image made with debootstrap from the Debian mirror, the wheels fetched from PyPI (checked
against the locks), every image built without a registry. Baseline from the same run: the
`make up` that follows `make down` (images built).

It removes every fta image and Docker's build cache first: run it from the repository root,
with no stack running, where nothing else needs the images meanwhile (it builds them again):
    .venv/bin/python -m bench.cold_up
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from docker.errors import ImageNotFound
from tests.support.docker_resources import local_docker
from tests.support.stack import running_stack


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def remove_images() -> list[str]:
    """Every fta image (tags and the builders' cache images) and Docker's build cache."""
    client = local_docker()
    try:
        removed = []
        for image in client.images.list(all=True):
            tags = [t for t in image.tags if t.startswith("fta/")]
            if tags or image.labels.get("fta.builder"):
                try:
                    client.images.remove(image.id, force=True)
                except ImageNotFound:  # went with an image removed before it
                    continue
                removed.extend(tags or [image.short_id])
    finally:
        client.close()
    subprocess.run(["docker", "builder", "prune", "-af"], check=True, capture_output=True)
    return removed


def main() -> None:
    build_cache = Path(tempfile.mkdtemp(prefix="fta-bench-cold-"))
    try:
        log(f"removed {len(remove_images())} images and the build cache")
        # Nothing of an earlier build: a cache of its own, and pip's cache left aside.
        env = {"FTA_BUILD_CACHE": str(build_cache), "PIP_NO_CACHE_DIR": "1"}
        started = time.monotonic()
        with running_stack(**env) as stack:
            cold = time.monotonic() - started
            log(f"cold make up: {cold:.1f} s")
            down = stack.script("down.sh")
            assert down.returncode == 0, down.stdout + down.stderr
            started = time.monotonic()
            up = stack.script("up.sh")
            warm = time.monotonic() - started
            assert up.returncode == 0, up.stdout + up.stderr
            log(f"warm make up: {warm:.1f} s")
    finally:
        shutil.rmtree(build_cache, ignore_errors=True)
    print(
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs "
        f"({platform.machine()}, Linux {platform.release()}); `{' '.join(sys.argv)}`.\n"
    )
    print("| measure | seconds | baseline | baseline's seconds | ratio |")
    print("|---|---|---|---|---|")
    print(
        f"| cold `make up` (no image, no cache) | {cold:.1f} | `make up` after `make down` "
        f"(images built) | {warm:.1f} | {cold / warm:.2f} |"
    )


if __name__ == "__main__":
    main()
