"""The runner `FTA_RUNNER` names: boto3 is imported only where ECS is used."""

from __future__ import annotations

from fta.runtime.docker_runner import DockerJobRunner
from fta.runtime.protocol import JobRunner
from fta.settings import Settings


def job_runner(settings: Settings) -> JobRunner:
    if settings.runner == "ecs":
        from fta.runtime.ecs import EcsJobRunner, EcsSettings

        return EcsJobRunner(settings, EcsSettings())
    return DockerJobRunner(settings)
