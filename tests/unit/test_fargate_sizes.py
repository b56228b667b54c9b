"""Plans' limits mapped to Fargate's task sizes, and the pairs Fargate refuses."""

from __future__ import annotations

import pytest

from fta.runtime.ecs import FargateSize, check_fargate_size, fargate_size
from fta.runtime.ecs.fargate import FARGATE_MEMORY_MIB

GIB = 1024**3
MIB = 1024**2


@pytest.mark.parametrize(
    ("cpus", "memory_bytes", "size"),
    [
        # 1 vCPU comes with 2 GiB at least: the container keeps the plan's 1 GiB.
        (1, GIB, FargateSize(1024, 2048, 1024)),
        (0.25, 512 * MIB, FargateSize(256, 512, 512)),
        (0.25, 2 * GIB, FargateSize(256, 2048, 2048)),
        # Over 2 GiB a quarter vCPU has no room: half a vCPU.
        (0.25, 3 * GIB, FargateSize(512, 3072, 3072)),
        (0.5, 1536 * MIB, FargateSize(512, 2048, 1536)),
        (2, 4 * GIB, FargateSize(2048, 4096, 4096)),
        # 2 vCPU hold 16 GiB at most.
        (2, 20 * GIB, FargateSize(4096, 20480, 20480)),
        (1.5, 3 * GIB, FargateSize(2048, 4096, 3072)),
        (8, 17 * GIB, FargateSize(8192, 20480, 17408)),
        (16, 120 * GIB, FargateSize(16384, 122880, 122880)),
    ],
)
def test_a_plan_runs_in_the_smallest_task_that_holds_it(
    cpus: float, memory_bytes: int, size: FargateSize
) -> None:
    assert fargate_size(int(cpus * 1_000_000_000), memory_bytes) == size


def test_a_plan_larger_than_any_task_is_refused() -> None:
    with pytest.raises(ValueError, match="no Fargate task holds"):
        fargate_size(16_000_000_000, 121 * GIB)
    with pytest.raises(ValueError, match="no Fargate task holds"):
        fargate_size(17_000_000_000, GIB)


@pytest.mark.parametrize(
    ("cpu", "memory"),
    [(1024, 1024), (256, 4096), (512, 1536), (512, 512), (3000, 4096), (8192, 18432), (0, 512)],
)
def test_pairs_fargate_refuses_are_refused(cpu: int, memory: int) -> None:
    with pytest.raises(ValueError, match="Fargate"):
        check_fargate_size(cpu, memory)


def test_the_table_holds_fargates_published_pairs() -> None:
    assert {
        cpu: (sizes[0], sizes[-1], len(sizes)) for cpu, sizes in FARGATE_MEMORY_MIB.items()
    } == {
        256: (512, 2048, 3),
        512: (1024, 4096, 4),
        1024: (2048, 8192, 7),
        2048: (4096, 16384, 13),
        4096: (8192, 30720, 23),
        8192: (16384, 61440, 12),
        16384: (32768, 122880, 12),
    }
    for cpu, sizes in FARGATE_MEMORY_MIB.items():
        for memory in sizes:
            check_fargate_size(cpu, memory)
