"""Portal memory under 100 concurrent log-ins with wrong passwords, against the real portal
container under the Compose memory limit (512 MiB), with a Postgres container of the project.

Each round boots a fresh portal twice, in alternating order: once as shipped (the password
hashes running at once sized from the memory limit) and once with the bound lifted to 64,
which is how the portal ran before (bounded only by its 10 database connections). For each
it reads the cgroup's memory once idle (after a warm-up log-in) and its peak during the
burst (the peak counter reset just before it, where the cgroups allow), and whether the
portal survived. Prints a Markdown report to stdout, progress to stderr.

Run from the repository root (images built by images/build.sh):
    .venv/bin/python -m bench.login_memory [--rounds 3] [--logins 100]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from tests.support.docker_resources import DockerResources, local_docker
from tests.support.portal_stack import (
    PORTAL_MEMORY_BYTES,
    bad_login,
    concurrent_bad_logins,
    portal_stack,
)

MIB = 1 << 20
# The per-address throttle lifted: as if the burst came from 100 addresses.
COMMON_ENV = {"FTA_LOGIN_MAX_FAILURES_PER_IP": "10000"}
CONFIGURATIONS = {
    "bounded (as shipped)": {},
    "unbounded (before)": {"FTA_PASSWORD_HASH_SLOTS": "64"},
}


@dataclass(frozen=True)
class Run:
    configuration: str
    idle: int
    peak: int
    peak_reset: bool
    statuses: Counter[int]
    survived: bool


def _run(configuration: str, logins: int) -> Run:
    client = local_docker()
    resources = DockerResources(client)
    try:
        env = {**COMMON_ENV, **CONFIGURATIONS[configuration]}
        with portal_stack(resources, env) as stack:
            bad_login(stack.portal_url)  # warm-up: the first hash loads argon2
            idle = stack.memory_usage()
            reset = stack.reset_memory_peak()
            try:
                answers = concurrent_bad_logins(stack.portal_url, logins)
                statuses = Counter(answer.status_code for answer in answers)
            except Exception as error:  # a killed portal drops connections
                print(f"  burst failed: {error!r}", file=sys.stderr)
                statuses = Counter({0: logins})
            state = stack.portal_state()
            survived = bool(state["Running"]) and not state["OOMKilled"]
            peak = stack.memory_peak() if state["Running"] else PORTAL_MEMORY_BYTES
            if state["OOMKilled"]:
                peak = PORTAL_MEMORY_BYTES
            return Run(configuration, idle, peak, reset, statuses, survived)
    finally:
        resources.cleanup()
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--logins", type=int, default=100)
    args = parser.parse_args()
    runs: list[Run] = []
    names = list(CONFIGURATIONS)
    for round_number in range(args.rounds):
        order = names if round_number % 2 == 0 else list(reversed(names))
        for name in order:
            print(f"round {round_number + 1}: {name}", file=sys.stderr)
            run = _run(name, args.logins)
            print(f"  {run}", file=sys.stderr)
            runs.append(run)

    print(
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs "
        f"({platform.machine()}, Linux {platform.release()}); {args.rounds} rounds of "
        f"{args.logins} concurrent bad log-ins; portal limit {PORTAL_MEMORY_BYTES // MIB} MiB.\n"
    )
    print(
        "| portal | idle (MiB) | peak in burst (MiB) | peak / idle | peak / limit | "
        "survived | answers |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in names:
        mine = [run for run in runs if run.configuration == name]
        idle = statistics.median(run.idle for run in mine)
        peak = statistics.median(run.peak for run in mine)
        answers: Counter[int] = Counter()
        for run in mine:
            answers.update(run.statuses)
        shown = ", ".join(f"{code}: {count}" for code, count in sorted(answers.items()))
        survived = sum(run.survived for run in mine)
        print(
            f"| {name} | {idle / MIB:.0f} | {peak / MIB:.0f} | {peak / idle:.2f} | "
            f"{peak / PORTAL_MEMORY_BYTES:.2f} | {survived}/{len(mine)} | {shown} |"
        )
    if not all(run.peak_reset for run in runs):
        print("\nThe peak counts from the container's start (no reset on these cgroups).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
