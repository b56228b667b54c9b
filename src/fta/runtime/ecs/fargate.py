"""Fargate's task sizes, and the smallest one that holds a plan's limits.

Fargate accepts only some CPU/memory pairs (and does not say which at RegisterTaskDefinition
time in every tool: moto accepts any), so the pairs are checked here before any call. A plan
of 1 CPU and 1 GiB needs a 1024/2048 task, since 1 vCPU comes with at least 2 GiB; the
container's own hard limit stays at the plan's 1024 MiB, so the job sees what it paid for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIB = 1024 * 1024

# CPU units (1024 = one vCPU) -> the memory sizes in MiB a task of that CPU may have.
FARGATE_MEMORY_MIB: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}


@dataclass(frozen=True)
class FargateSize:
    cpu: int
    memory_mib: int
    # The container's hard limit: the plan's memory, at most the task's.
    container_memory_mib: int


def check_fargate_size(cpu: int, memory_mib: int) -> None:
    """Raises ValueError unless Fargate runs a task of `cpu` units and `memory_mib` MiB."""
    sizes = FARGATE_MEMORY_MIB.get(cpu)
    if sizes is None:
        raise ValueError(f"Fargate has no task of {cpu} CPU units ({sorted(FARGATE_MEMORY_MIB)})")
    if memory_mib not in sizes:
        raise ValueError(
            f"a Fargate task of {cpu} CPU units takes {sizes[0]} to {sizes[-1]} MiB "
            f"in steps of {sizes[1] - sizes[0]}, not {memory_mib}"
        )


def fargate_size(nano_cpus: int, memory_bytes: int) -> FargateSize:
    """The smallest Fargate task with at least `nano_cpus` of CPU and `memory_bytes`."""
    cpu_needed = math.ceil(nano_cpus * 1024 / 1_000_000_000)
    memory_needed = math.ceil(memory_bytes / MIB)
    for cpu, sizes in FARGATE_MEMORY_MIB.items():
        if cpu < cpu_needed:
            continue
        memory = next((size for size in sizes if size >= memory_needed), None)
        if memory is not None:
            check_fargate_size(cpu, memory)
            return FargateSize(cpu, memory, memory_needed)
    raise ValueError(
        f"no Fargate task holds {nano_cpus / 1e9:g} CPU and {memory_needed} MiB "
        "(the largest is 16 vCPU and 120 GiB)"
    )
