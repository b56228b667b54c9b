"""The JobRunner on AWS ECS/Fargate: each job or bot is one task, in its own micro-VM."""

from fta.runtime.ecs.fargate import FargateSize, check_fargate_size, fargate_size
from fta.runtime.ecs.runner import EcsJobRunner
from fta.runtime.ecs.settings import EcsSettings

__all__ = ["EcsJobRunner", "EcsSettings", "FargateSize", "check_fargate_size", "fargate_size"]
