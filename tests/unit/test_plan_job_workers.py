"""How many processes a hyperopt gets from its tenant's quotas."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fta.access.quotas import Quotas
from fta.worker.limits import plan_job_workers


@pytest.mark.parametrize(
    ("cpu", "workers"),
    [("0.25", 1), ("0.99", 1), ("1.00", 1), ("1.50", 1), ("2.00", 2), ("3.75", 3), ("8", 8)],
)
def test_the_whole_cpus_of_the_plan_and_at_least_one(cpu: str, workers: int) -> None:
    granted = Quotas(Decimal(cpu), 1024, 256, 2048, 1, 10, 1, 3600)
    assert plan_job_workers(granted) == workers
