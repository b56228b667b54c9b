"""The ECS/Fargate templates (deploy/ecs): they lint clean, cfn-lint has teeth, and the roles
grant what the platform needs and nothing more, judged by an IAM evaluator
(tests/support/iam_policy.py) on the templates' own policies resolved with test values."""

from __future__ import annotations

import copy
import re
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from fta.runtime.ecs import EcsSettings
from tests.support.ecs_templates import (
    ACCOUNT,
    BUNDLES,
    CFN_LINT,
    CLUSTER_ARN,
    GATEWAY_ROLE,
    INSTANCE,
    JOB_EXECUTION_ROLE,
    JOB_TASK,
    JOB_TASK_DEFINITION,
    JOB_TASK_ROLE,
    MAIN,
    OTHER_CLUSTER_ARN,
    PARAMETERS,
    PHYSICAL_IDS,
    PORTAL_ROLE,
    REGION,
    SERVICE_EXECUTION_ROLE,
    TEMPLATES,
    VPC_ARN,
    WORKER_ROLE,
    Resolver,
    load,
    role_arn,
    role_statements,
)
from tests.support.iam_policy import (
    Decision,
    Request,
    UnsupportedPolicy,
    arn_match,
    condition_holds,
    evaluate,
    is_allowed,
)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load(MAIN)


@pytest.fixture(scope="module")
def worker(template: Mapping[str, Any]) -> list[dict[str, Any]]:
    return role_statements(template, "WorkerTaskRole")


# ---------------------------------------------------------------- the evaluator itself


def test_an_explicit_deny_wins_over_an_allow() -> None:
    statements = [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::b/*"},
    ]
    assert evaluate(statements, Request("s3:GetObject", "arn:aws:s3:::b/k")) is Decision.ALLOW
    assert (
        evaluate(statements, Request("s3:DeleteObject", "arn:aws:s3:::b/k"))
        is Decision.EXPLICIT_DENY
    )
    assert evaluate(statements, Request("ec2:RunInstances", "*")) is Decision.IMPLICIT_DENY
    assert evaluate([], Request("s3:GetObject", "arn:aws:s3:::b/k")) is Decision.IMPLICIT_DENY


def test_actions_match_case_insensitively_with_wildcards() -> None:
    statements = [
        {"Effect": "Allow", "Action": ["ecs:Describe*", "logs:Get?ogEvents"], "Resource": "*"}
    ]
    assert is_allowed(statements, "ecs:DescribeTasks", "*")
    assert is_allowed(statements, "ECS:describetasks", "*")
    assert is_allowed(statements, "logs:GetLogEvents", "*")
    assert not is_allowed(statements, "ecs:RunTask", "*")
    assert not is_allowed(statements, "logs:GetLogEventsX", "*")


def test_resource_wildcards_stay_inside_an_arn_segment() -> None:
    assert arn_match("arn:aws:ecs:*:1:cluster/a", "arn:aws:ecs:eu-west-3:1:cluster/a")
    assert not arn_match("arn:aws:ecs:eu-*:1:cluster/a", "arn:aws:ecs:us-east-1:1:cluster/a")
    # A wildcard in the region segment does not swallow the account.
    assert not arn_match("arn:aws:ecs:*:cluster/a", "arn:aws:ecs:eu-west-3:1:cluster/a")
    # The resource part may hold colons and slashes.
    assert arn_match(
        "arn:aws:logs:r:1:log-group:/fta/prod/jobs:*",
        "arn:aws:logs:r:1:log-group:/fta/prod/jobs:log-stream:job/abc",
    )
    assert not arn_match(
        "arn:aws:logs:r:1:log-group:/fta/prod/jobs:*",
        "arn:aws:logs:r:1:log-group:/fta/prod/services:log-stream:x",
    )
    # Case-sensitive, unlike actions.
    assert not arn_match("arn:aws:s3:::Bucket/*", "arn:aws:s3:::bucket/k")
    assert arn_match("arn:aws:s3:::b/bundles/?", "arn:aws:s3:::b/bundles/x")
    assert not arn_match("arn:aws:s3:::b/bundles/?", "arn:aws:s3:::b/bundles/xy")


def test_not_action_and_not_resource() -> None:
    statements = [{"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::secret/*"}]
    assert is_allowed(statements, "s3:GetObject", "arn:aws:s3:::public/k")
    assert not is_allowed(statements, "iam:PassRole", "arn:aws:s3:::public/k")
    assert not is_allowed(statements, "s3:GetObject", "arn:aws:s3:::secret/k")


def test_condition_values_are_alternatives_and_keys_all_must_hold() -> None:
    condition = {"StringEquals": {"k1": ["a", "b"], "k2": "c"}, "Bool": {"k3": "true"}}
    assert condition_holds(condition, {"k1": "b", "k2": "c", "k3": "true"})
    assert condition_holds(condition, {"K1": "a", "k2": "c", "k3": "True"})  # keys ignore case
    assert not condition_holds(condition, {"k1": "x", "k2": "c", "k3": "true"})
    assert not condition_holds(condition, {"k1": "a", "k2": "x", "k3": "true"})
    assert not condition_holds(condition, {"k1": "a", "k2": "c", "k3": "false"})
    # Values compare exactly: case matters for StringEquals.
    assert not condition_holds(condition, {"k1": "A", "k2": "c", "k3": "true"})


def test_a_missing_key_fails_a_condition_unless_if_exists_or_negated() -> None:
    assert not condition_holds({"StringEquals": {"k": "v"}}, {})
    assert not condition_holds({"ArnLike": {"k": "arn:aws:s3:::*"}}, {})
    assert not condition_holds({"Bool": {"k": "false"}}, {})
    assert condition_holds({"StringEqualsIfExists": {"k": "v"}}, {})
    assert not condition_holds({"StringEqualsIfExists": {"k": "v"}}, {"k": "w"})
    # AWS: a negated operator holds when the key is absent (a bucket policy's deny of
    # requests that did not come through an endpoint relies on it).
    assert condition_holds({"StringNotEquals": {"k": "v"}}, {})
    assert not condition_holds({"StringNotEquals": {"k": ["v", "w"]}}, {"k": "w"})
    assert condition_holds({"StringNotEquals": {"k": ["v", "w"]}}, {"k": "x"})


def test_like_and_arn_operators() -> None:
    assert condition_holds({"StringLike": {"k": "fta-*"}}, {"k": "fta-prod"})
    assert not condition_holds({"StringLike": {"k": "fta-*"}}, {"k": "ftb-prod"})
    assert condition_holds({"ArnEquals": {"k": CLUSTER_ARN}}, {"k": CLUSTER_ARN})
    assert not condition_holds({"ArnEquals": {"k": CLUSTER_ARN}}, {"k": OTHER_CLUSTER_ARN})
    assert condition_holds(
        {"ArnLike": {"k": f"arn:aws:ecs:*:{ACCOUNT}:cluster/*"}}, {"k": OTHER_CLUSTER_ARN}
    )
    assert not condition_holds({"ArnNotLike": {"k": CLUSTER_ARN}}, {"k": CLUSTER_ARN})


def test_what_it_does_not_implement_is_refused_not_guessed() -> None:
    with pytest.raises(UnsupportedPolicy):
        condition_holds({"NumericLessThan": {"k": "3"}}, {"k": "1"})
    with pytest.raises(UnsupportedPolicy):
        condition_holds({"ForAnyValue:StringEquals": {"k": "a"}}, {"k": "a"})
    with pytest.raises(UnsupportedPolicy):
        is_allowed([{"Effect": "Allow", "Action": "*", "Resource": "${aws:username}"}], "a:b", "x")


# ---------------------------------------------------------------- lint


def test_cfn_lint_is_installed_beside_this_python() -> None:
    assert CFN_LINT.exists(), "cfn-lint is a dev dependency: pip install -e '.[dev]'"


def test_the_templates_lint_clean() -> None:
    assert TEMPLATES, "no template under deploy/ecs"
    result = subprocess.run(
        [str(CFN_LINT), *map(str, TEMPLATES)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


FARGATE_TASK = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Job:
    Type: AWS::ECS::TaskDefinition
    Properties:
      RequiresCompatibilities: [FARGATE]
      NetworkMode: awsvpc
      Cpu: "{cpu}"
      Memory: "{memory}"
      ContainerDefinitions:
        - Name: job
          Image: public.example/freqtrade:test
          Essential: true
"""


@pytest.mark.parametrize(("cpu", "memory"), [("256", "4096"), ("1024", "1024"), ("4096", "4096")])
def test_cfn_lint_refuses_an_invalid_fargate_size(tmp_path: Path, cpu: str, memory: str) -> None:
    path = tmp_path / "task.yaml"
    path.write_text(FARGATE_TASK.format(cpu=cpu, memory=memory))
    result = subprocess.run([str(CFN_LINT), str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    # E3047: the Fargate CPU and memory pair rule.
    assert f"E3047 Cpu '{cpu}' is not compatible with memory '{memory}'" in result.stdout, (
        result.stdout
    )
    # ... and the same definition with a valid pair passes: the failure is about the size.
    path.write_text(FARGATE_TASK.format(cpu="1024", memory="2048"))
    valid = subprocess.run([str(CFN_LINT), str(path)], capture_output=True, text=True, timeout=120)
    assert valid.returncode == 0, valid.stdout


# ---------------------------------------------------------------- the worker's role


def run_task(cluster: str = CLUSTER_ARN, definition: str = JOB_TASK_DEFINITION) -> Request:
    return Request("ecs:RunTask", definition, {"ecs:cluster": cluster})


def test_the_worker_runs_its_job_task_definitions_on_its_cluster(worker: list[Any]) -> None:
    assert evaluate(worker, run_task()) is Decision.ALLOW
    bot = JOB_TASK_DEFINITION.replace("backtest-1024-2048:3", "bot-1024-2048:1")
    assert evaluate(worker, run_task(definition=bot)) is Decision.ALLOW


def test_the_worker_runs_nothing_on_another_cluster(worker: list[Any]) -> None:
    assert evaluate(worker, run_task(cluster=OTHER_CLUSTER_ARN)) is not Decision.ALLOW
    # The cluster is always in the request; were it missing, no allow either.
    assert evaluate(worker, Request("ecs:RunTask", JOB_TASK_DEFINITION)) is not Decision.ALLOW


@pytest.mark.parametrize(
    "definition",
    [
        f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/fta-staging-t1-backtest-1024-2048:1",
        f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/admin-tools:1",
        f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/ftaxprod-t1:1",
        f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/fta-prod-t1-backtest-1024-2048:1",
        f"arn:aws:ecs:{REGION}:999999999999:task-definition/fta-prod-t1-backtest-1024-2048:1",
    ],
)
def test_the_worker_runs_no_other_family(worker: list[Any], definition: str) -> None:
    assert evaluate(worker, run_task(definition=definition)) is not Decision.ALLOW


def test_no_job_task_is_started_with_exec_enabled(worker: list[Any]) -> None:
    request = Request(
        "ecs:RunTask",
        JOB_TASK_DEFINITION,
        {"ecs:cluster": CLUSTER_ARN, "ecs:enable-execute-command": "true"},
    )
    assert evaluate(worker, request) is Decision.EXPLICIT_DENY
    assert not is_allowed(worker, "ecs:ExecuteCommand", JOB_TASK)


def test_the_worker_watches_and_stops_tasks_of_its_cluster_only(worker: list[Any]) -> None:
    other_task = JOB_TASK.replace(f"task/fta-{INSTANCE}/", "task/other/")
    for action in ("ecs:StopTask", "ecs:DescribeTasks"):
        assert is_allowed(worker, action, JOB_TASK, {"ecs:cluster": CLUSTER_ARN})
        assert not is_allowed(worker, action, other_task, {"ecs:cluster": OTHER_CLUSTER_ARN})
        assert not is_allowed(worker, action, JOB_TASK, {"ecs:cluster": OTHER_CLUSTER_ARN})
    listing = f"arn:aws:ecs:{REGION}:{ACCOUNT}:container-instance/fta-{INSTANCE}/*"
    assert is_allowed(worker, "ecs:ListTasks", listing, {"ecs:cluster": CLUSTER_ARN})
    assert not is_allowed(worker, "ecs:ListTasks", listing, {"ecs:cluster": OTHER_CLUSTER_ARN})


def test_the_worker_tags_only_what_it_launches(worker: list[Any]) -> None:
    at_launch = {"ecs:CreateAction": "RunTask"}
    assert is_allowed(worker, "ecs:TagResource", JOB_TASK, at_launch)
    assert not is_allowed(worker, "ecs:TagResource", JOB_TASK)  # an existing task
    assert not is_allowed(
        worker, "ecs:TagResource", JOB_TASK, {"ecs:CreateAction": "CreateService"}
    )
    other_task = JOB_TASK.replace(f"task/fta-{INSTANCE}/", "task/other/")
    assert not is_allowed(worker, "ecs:TagResource", other_task, at_launch)
    assert not is_allowed(worker, "ecs:TagResource", CLUSTER_ARN, at_launch)
    # Its own task definitions, as they are registered.
    definition = JOB_TASK_DEFINITION
    assert is_allowed(
        worker, "ecs:TagResource", definition, {"ecs:CreateAction": "RegisterTaskDefinition"}
    )
    assert not is_allowed(worker, "ecs:TagResource", definition)
    assert not is_allowed(worker, "ecs:UntagResource", JOB_TASK)


def test_the_worker_passes_the_job_roles_to_ecs_tasks_only(worker: list[Any]) -> None:
    to_tasks = {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    for role in (JOB_TASK_ROLE, JOB_EXECUTION_ROLE):
        assert is_allowed(worker, "iam:PassRole", role, to_tasks)
        for service in ("ec2.amazonaws.com", "lambda.amazonaws.com", "ecs.amazonaws.com"):
            assert not is_allowed(worker, "iam:PassRole", role, {"iam:PassedToService": service})
        assert not is_allowed(worker, "iam:PassRole", role)
    for role in (WORKER_ROLE, PORTAL_ROLE, GATEWAY_ROLE, SERVICE_EXECUTION_ROLE, role_arn("admin")):
        assert not is_allowed(worker, "iam:PassRole", role, to_tasks)


def test_the_worker_registers_task_definitions(worker: list[Any]) -> None:
    # No resource-level permission exists for these: "*" is what IAM checks.
    for action in (
        "ecs:RegisterTaskDefinition",
        "ecs:DescribeTaskDefinition",
        "ecs:DeregisterTaskDefinition",
    ):
        assert is_allowed(worker, action, "*")


TENANT_GROUP = f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-0123456789abcdef0"


def test_the_worker_makes_tenant_security_groups_in_its_vpc_tagged(worker: list[Any]) -> None:
    tagged = {"aws:RequestTag/fta:instance": INSTANCE}
    assert is_allowed(worker, "ec2:CreateSecurityGroup", VPC_ARN)
    assert not is_allowed(
        worker, "ec2:CreateSecurityGroup", f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-0other"
    )
    assert is_allowed(worker, "ec2:CreateSecurityGroup", TENANT_GROUP, tagged)
    assert not is_allowed(worker, "ec2:CreateSecurityGroup", TENANT_GROUP)
    assert not is_allowed(
        worker, "ec2:CreateSecurityGroup", TENANT_GROUP, {"aws:RequestTag/fta:instance": "staging"}
    )
    assert is_allowed(
        worker, "ec2:CreateTags", TENANT_GROUP, {"ec2:CreateAction": "CreateSecurityGroup"}
    )
    assert not is_allowed(worker, "ec2:CreateTags", TENANT_GROUP)


@pytest.mark.parametrize(
    "action",
    [
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:AuthorizeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupEgress",
        "ec2:DeleteSecurityGroup",
    ],
)
def test_the_worker_changes_only_its_own_groups(worker: list[Any], action: str) -> None:
    own = {"ec2:ResourceTag/fta:instance": INSTANCE, "ec2:Vpc": VPC_ARN}
    assert is_allowed(worker, action, TENANT_GROUP, own)
    # The gateway's, endpoints' and EFS groups carry no such tag: untouchable.
    assert not is_allowed(worker, action, TENANT_GROUP, {"ec2:Vpc": VPC_ARN})
    assert not is_allowed(
        worker,
        action,
        TENANT_GROUP,
        {"ec2:ResourceTag/fta:instance": "staging", "ec2:Vpc": VPC_ARN},
    )
    other_vpc = f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-0other"
    assert not is_allowed(
        worker,
        action,
        TENANT_GROUP,
        {"ec2:ResourceTag/fta:instance": INSTANCE, "ec2:Vpc": other_vpc},
    )


def test_the_worker_manages_tagged_access_points_of_its_file_system(worker: list[Any]) -> None:
    file_system = (
        f"arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:file-system/{PHYSICAL_IDS['FileSystem']}"
    )
    other_fs = f"arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:file-system/fs-0other"
    access_point = (
        f"arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:access-point/fsap-0123456789abcdef0"
    )
    tagged = {"aws:RequestTag/fta:instance": INSTANCE}
    assert is_allowed(worker, "elasticfilesystem:CreateAccessPoint", file_system, tagged)
    assert not is_allowed(worker, "elasticfilesystem:CreateAccessPoint", file_system)
    assert not is_allowed(worker, "elasticfilesystem:CreateAccessPoint", other_fs, tagged)
    assert is_allowed(
        worker,
        "elasticfilesystem:DeleteAccessPoint",
        access_point,
        {"aws:ResourceTag/fta:instance": INSTANCE},
    )
    assert not is_allowed(worker, "elasticfilesystem:DeleteAccessPoint", access_point)
    assert not is_allowed(worker, "elasticfilesystem:DeleteFileSystem", file_system)
    assert not is_allowed(worker, "elasticfilesystem:ClientRootAccess", file_system)
    # A tenant's access point records its plan's size; the worker's own cannot be touched.
    own = {"aws:ResourceTag/fta:instance": INSTANCE}
    assert is_allowed(worker, "elasticfilesystem:TagResource", access_point, own)
    assert not is_allowed(worker, "elasticfilesystem:TagResource", access_point)
    worker_point = (
        f"arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:access-point/fsap-0worker000000000"
    )
    assert not is_allowed(worker, "elasticfilesystem:DeleteAccessPoint", worker_point)


def test_the_worker_mounts_the_tenants_directory_through_its_access_point_only(
    worker: list[Any],
) -> None:
    file_system = (
        f"arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:file-system/{PHYSICAL_IDS['FileSystem']}"
    )
    own = f"arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:access-point/fsap-0worker000000000"
    tenant = f"arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:access-point/fsap-0123456789abcdef0"
    for action in ("elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"):
        assert is_allowed(worker, action, file_system, {"elasticfilesystem:AccessPointArn": own})
        assert not is_allowed(
            worker, action, file_system, {"elasticfilesystem:AccessPointArn": tenant}
        )
        assert not is_allowed(worker, action, file_system)


def test_the_worker_reads_job_logs_and_writes_bundles_only(worker: list[Any]) -> None:
    stream = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/fta/{INSTANCE}/jobs:log-stream:job/x/1"
    services = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/fta/{INSTANCE}/services:log-stream:x"
    assert is_allowed(worker, "logs:GetLogEvents", stream)
    assert not is_allowed(worker, "logs:GetLogEvents", services)
    assert not is_allowed(worker, "logs:DeleteLogGroup", stream)
    assert is_allowed(worker, "s3:PutObject", f"{BUNDLES}/job-1.json")
    assert is_allowed(worker, "s3:DeleteObject", f"{BUNDLES}/job-1.json")
    assert not is_allowed(worker, "s3:PutObject", f"arn:aws:s3:::{PHYSICAL_IDS['BundleBucket']}/x")
    assert not is_allowed(worker, "s3:PutObject", "arn:aws:s3:::another-bucket/bundles/x")
    assert not is_allowed(worker, "s3:ListBucket", f"arn:aws:s3:::{PHYSICAL_IDS['BundleBucket']}")


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("iam:CreateRole", "*"),
        ("iam:PutRolePolicy", WORKER_ROLE),
        ("sts:AssumeRole", role_arn("admin")),
        ("secretsmanager:GetSecretValue", PARAMETERS["AppSecretArn"]),
        ("ecs:CreateService", "*"),
        ("ecs:UpdateService", f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/fta-{INSTANCE}/portal"),
        ("ec2:RunInstances", "*"),
        ("ec2:ModifyInstanceAttribute", "*"),
        ("s3:GetObject", "arn:aws:s3:::another-bucket/key"),
    ],
)
def test_the_worker_holds_nothing_else(worker: list[Any], action: str, resource: str) -> None:
    assert not is_allowed(worker, action, resource, {"ecs:cluster": CLUSTER_ARN})


# ---------------------------------------------------------------- the other roles

SENSITIVE = [
    ("s3:GetObject", f"{BUNDLES}/job-1.json"),
    ("s3:PutObject", "arn:aws:s3:::attacker-bucket/x"),
    ("ecs:RunTask", JOB_TASK_DEFINITION),
    ("ecs:ListTasks", "*"),
    ("secretsmanager:GetSecretValue", PARAMETERS["AppSecretArn"]),
    ("ssm:GetParameter", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/x"),
    ("sts:AssumeRole", role_arn("admin")),
    ("ec2:DescribeInstances", "*"),
    ("iam:PassRole", JOB_TASK_ROLE),
    ("logs:PutLogEvents", "*"),
    ("elasticfilesystem:DescribeAccessPoints", "*"),
]


@pytest.mark.parametrize(("action", "resource"), SENSITIVE)
def test_the_job_task_role_can_do_nothing(
    template: Mapping[str, Any], action: str, resource: str
) -> None:
    statements = role_statements(template, "JobTaskRole")
    assert statements == []
    context = {"ecs:cluster": CLUSTER_ARN, "iam:PassedToService": "ecs-tasks.amazonaws.com"}
    assert not is_allowed(statements, action, resource, context)


@pytest.mark.parametrize("role", ["PortalTaskRole", "GatewayTaskRole"])
def test_the_portal_and_gateway_roles_touch_no_ecs(template: Mapping[str, Any], role: str) -> None:
    statements = role_statements(template, role)
    assert statements == []
    for action in ("ecs:RunTask", "ecs:StopTask", "ecs:ListTasks", "ecs:RegisterTaskDefinition"):
        assert not is_allowed(statements, action, "*", {"ecs:cluster": CLUSTER_ARN})


def test_the_job_execution_role_pulls_the_job_image_and_writes_job_logs(
    template: Mapping[str, Any],
) -> None:
    statements = role_statements(template, "JobExecutionRole")
    job_repo = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/fta-prod/freqtrade"
    app_repo = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/fta-prod/app"
    assert is_allowed(statements, "ecr:BatchGetImage", job_repo)
    assert is_allowed(statements, "ecr:GetDownloadUrlForLayer", job_repo)
    assert not is_allowed(statements, "ecr:BatchGetImage", app_repo)
    assert not is_allowed(statements, "ecr:PutImage", job_repo)
    stream = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/fta/{INSTANCE}/jobs:log-stream:job/x"
    assert is_allowed(statements, "logs:PutLogEvents", stream)
    assert not is_allowed(
        statements,
        "logs:PutLogEvents",
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/fta/{INSTANCE}/services:log-stream:x",
    )
    assert not is_allowed(statements, "secretsmanager:GetSecretValue", PARAMETERS["AppSecretArn"])


def test_every_task_role_trusts_ecs_tasks_of_this_account_only(template: Mapping[str, Any]) -> None:
    resolver = Resolver(template, PARAMETERS)
    for logical_id in (
        "JobTaskRole",
        "JobExecutionRole",
        "WorkerTaskRole",
        "PortalTaskRole",
        "GatewayTaskRole",
        "ServiceExecutionRole",
    ):
        trust = resolver.resolve(template["Resources"][logical_id]["Properties"])
        (statement,) = trust["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}, logical_id
        assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT, logical_id


def test_bundles_are_refused_outside_the_vpc_endpoint_and_without_tls(
    template: Mapping[str, Any],
) -> None:
    resolver = Resolver(template, PARAMETERS)
    policy = resolver.resolve(template["Resources"]["BundleBucketPolicy"]["Properties"])
    statements = policy["PolicyDocument"]["Statement"]
    key = f"{BUNDLES}/job-1.json"
    through_endpoint = {"aws:SourceVpce": PHYSICAL_IDS["S3Endpoint"], "aws:SecureTransport": "true"}
    assert evaluate(statements, Request("s3:GetObject", key, through_endpoint)) is not (
        Decision.EXPLICIT_DENY
    )
    assert (
        evaluate(statements, Request("s3:GetObject", key, {"aws:SecureTransport": "true"}))
        is Decision.EXPLICIT_DENY
    )
    assert (
        evaluate(
            statements,
            Request("s3:GetObject", key, {**through_endpoint, "aws:SecureTransport": "false"}),
        )
        is Decision.EXPLICIT_DENY
    )


# ---------------------------------------------------------------- every assertion can fail


def _statement(statements: list[dict[str, Any]], sid: str) -> dict[str, Any]:
    (found,) = [s for s in statements if s.get("Sid") == sid]
    return found


def drop_cluster_condition(statements: list[dict[str, Any]]) -> None:
    del _statement(statements, "RunJobTasks")["Condition"]


def widen_family(statements: list[dict[str, Any]]) -> None:
    _statement(statements, "RunJobTasks")["Resource"] = (
        f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/*"
    )


def drop_passed_to_service(statements: list[dict[str, Any]]) -> None:
    del _statement(statements, "PassOnlyTheJobRoles")["Condition"]


def widen_pass_role(statements: list[dict[str, Any]]) -> None:
    _statement(statements, "PassOnlyTheJobRoles")["Resource"] = f"arn:aws:iam::{ACCOUNT}:role/*"


def drop_create_action(statements: list[dict[str, Any]]) -> None:
    del _statement(statements, "TagJobTasksAtLaunch")["Condition"]


def drop_exec_deny(statements: list[dict[str, Any]]) -> None:
    statements.remove(_statement(statements, "NoExecIntoJobs"))


def drop_group_tag_condition(statements: list[dict[str, Any]]) -> None:
    del _statement(statements, "ManageOwnGroups")["Condition"]["StringEquals"]


MUTATIONS: list[tuple[Callable[[list[dict[str, Any]]], None], Request]] = [
    (drop_cluster_condition, run_task(cluster=OTHER_CLUSTER_ARN)),
    (
        widen_family,
        run_task(definition=f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/admin-tools:1"),
    ),
    (
        drop_passed_to_service,
        Request("iam:PassRole", JOB_TASK_ROLE, {"iam:PassedToService": "ec2.amazonaws.com"}),
    ),
    (
        widen_pass_role,
        Request("iam:PassRole", WORKER_ROLE, {"iam:PassedToService": "ecs-tasks.amazonaws.com"}),
    ),
    (drop_create_action, Request("ecs:TagResource", JOB_TASK)),
    (
        drop_exec_deny,
        Request(
            "ecs:RunTask",
            JOB_TASK_DEFINITION,
            {"ecs:cluster": CLUSTER_ARN, "ecs:enable-execute-command": "true"},
        ),
    ),
    (
        drop_group_tag_condition,
        Request("ec2:DeleteSecurityGroup", TENANT_GROUP, {"ec2:Vpc": VPC_ARN}),
    ),
]


@pytest.mark.parametrize(("mutate", "request_"), MUTATIONS, ids=[m.__name__ for m, _ in MUTATIONS])
def test_a_weakened_worker_policy_is_caught(
    worker: list[Any], mutate: Callable[[list[dict[str, Any]]], None], request_: Request
) -> None:
    assert evaluate(worker, request_) is not Decision.ALLOW
    weakened = copy.deepcopy(worker)
    mutate(weakened)
    assert evaluate(weakened, request_) is Decision.ALLOW


def test_a_policy_added_to_the_job_task_role_is_caught(template: dict[str, Any]) -> None:
    weakened = copy.deepcopy(template)
    weakened["Resources"]["JobTaskRole"]["Properties"]["Policies"] = [
        {
            "PolicyName": "oops",
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
            },
        }
    ]
    statements = role_statements(weakened, "JobTaskRole")
    assert is_allowed(statements, "s3:GetObject", f"{BUNDLES}/job-1.json")


def test_a_role_policy_attached_beside_the_role_is_counted(template: dict[str, Any]) -> None:
    weakened = copy.deepcopy(template)
    weakened["Resources"]["Sneaky"] = {
        "Type": "AWS::IAM::RolePolicy",
        "Properties": {
            "RoleName": {"Ref": "PortalTaskRole"},
            "PolicyName": "sneaky",
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "ecs:*", "Resource": "*"}],
            },
        },
    }
    assert is_allowed(role_statements(weakened, "PortalTaskRole"), "ecs:RunTask", "*")


# ---------------------------------------------------------------- the worker's settings

# Every setting the ECS runner has no default for, and where the worker mounts the tenants.
WORKER_SETTINGS = {
    "FTA_RUNNER",
    "AWS_REGION",
    "FTA_ECS_TENANTS_MOUNT",
    "FTA_TENANT_SUBNET_POOL",
    "FTA_TENANT_SUBNET_PREFIX",
    *(
        f"FTA_ECS_{name.upper()}"
        for name, field in EcsSettings.model_fields.items()
        if field.is_required()
    ),
}


def _container(template: Mapping[str, Any], task_definition: str) -> dict[str, Any]:
    resolver = Resolver(template, PARAMETERS)
    definition = template["Resources"][task_definition]["Properties"]
    (container,) = definition["ContainerDefinitions"]
    environment = {}
    for pair in container.get("Environment", []):
        try:
            environment[pair["Name"]] = resolver.resolve(pair["Value"])
        except (KeyError, NotImplementedError):
            environment[pair["Name"]] = "<unresolved>"
    return {"environment": environment, "secrets": container.get("Secrets", [])}


def test_the_worker_mounts_the_tenants_directory_where_its_settings_say(
    template: Mapping[str, Any],
) -> None:
    definition = template["Resources"]["WorkerTaskDefinition"]["Properties"]
    (container,) = definition["ContainerDefinitions"]
    (point,) = [p for p in container["MountPoints"] if p["SourceVolume"] == "tenants"]
    environment = _container(template, "WorkerTaskDefinition")["environment"]
    assert point["ContainerPath"] == environment["FTA_ECS_TENANTS_MOUNT"]
    (volume,) = [v for v in definition["Volumes"] if v["Name"] == "tenants"]
    efs = volume["EFSVolumeConfiguration"]
    assert efs["TransitEncryption"] == "ENABLED"
    assert efs["AuthorizationConfig"] == {
        "AccessPointId": {"Ref": "WorkerAccessPoint"},
        "IAM": "ENABLED",
    }
    access_point = template["Resources"]["WorkerAccessPoint"]["Properties"]
    assert access_point["PosixUser"] == {"Uid": "10000", "Gid": "10000"}
    assert access_point["RootDirectory"]["Path"] == {"Fn::Sub": "/${Instance}/tenants"}


def test_the_worker_gets_every_setting_the_ecs_runner_reads(template: Mapping[str, Any]) -> None:
    worker = _container(template, "WorkerTaskDefinition")
    environment = worker["environment"]
    assert environment.keys() >= WORKER_SETTINGS
    assert environment["FTA_RUNNER"] == "ecs"
    assert environment["FTA_ECS_CLUSTER"] == CLUSTER_ARN
    assert environment["FTA_ECS_MARKET_DATA_HOST"] == "market-data.fta.internal"
    assert environment["FTA_ECS_LOG_GROUP"] == f"/fta/{INSTANCE}/jobs"
    assert environment["FTA_ECS_JOB_TASK_ROLE"] == JOB_TASK_ROLE
    assert environment["FTA_ECS_JOB_EXECUTION_ROLE"] == JOB_EXECUTION_ROLE
    assert environment["AWS_REGION"] == REGION


@pytest.mark.parametrize(
    "task_definition",
    [
        "PortalTaskDefinition",
        "WorkerTaskDefinition",
        "GatewayTaskDefinition",
        "MigrateTaskDefinition",
    ],
)
def test_secrets_come_from_secrets_manager_only(
    template: Mapping[str, Any], task_definition: str
) -> None:
    container = _container(template, task_definition)
    for name in container["environment"]:
        assert not re.search(r"DATABASE_URL|SECRET|PASSWORD|_KEY$", name), name
    for secret in container["secrets"]:
        assert secret["ValueFrom"]["Fn::Sub"].startswith("${AppSecretArn}:"), secret
    parameters = template["Parameters"]
    for name, spec in parameters.items():
        if re.search(r"password|secret(?!arn)|key$", name, re.IGNORECASE):
            pytest.fail(f"a secret as a plain parameter: {name} ({spec})")


# ---------------------------------------------------------------- the network and the data


def _of_type(template: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def test_job_subnets_have_no_way_out(template: Mapping[str, Any]) -> None:
    vpc = template["Resources"]["Vpc"]["Properties"]
    assert vpc["EnableDnsHostnames"] is True
    assert vpc["EnableDnsSupport"] is True
    for route in _of_type(template, "AWS::EC2::Route").values():
        assert route["Properties"]["RouteTableId"] != {"Ref": "JobRouteTable"}
        assert route.get("Condition") == "HasNat"
    for kind in ("AWS::EC2::InternetGateway", "AWS::EC2::NatGateway"):
        for resource in _of_type(template, kind).values():
            assert resource.get("Condition") == "HasNat"
    for subnet in _of_type(template, "AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False
    for service in _of_type(template, "AWS::ECS::Service").values():
        network = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert network["AssignPublicIp"] == "DISABLED"
    alb = template["Resources"]["PortalLoadBalancer"]["Properties"]
    assert alb["Scheme"] == "internal"


def test_interface_endpoints_answer_privately_and_s3_only_for_fta(
    template: Mapping[str, Any],
) -> None:
    endpoints = _of_type(template, "AWS::EC2::VPCEndpoint")
    services = set()
    for endpoint in endpoints.values():
        properties = endpoint["Properties"]
        service = properties["ServiceName"]["Fn::Sub"].rsplit(".", 1)[-1]
        services.add(service)
        if properties["VpcEndpointType"] == "Interface":
            assert properties["PrivateDnsEnabled"] is True
            assert properties["SecurityGroupIds"] == [{"Ref": "EndpointsSecurityGroup"}]
    assert {"api", "dkr", "logs", "s3"} <= services
    resolver = Resolver(template, PARAMETERS)
    policy = resolver.resolve(template["Resources"]["S3Endpoint"]["Properties"])["PolicyDocument"]
    statements = policy["Statement"]
    layer = f"arn:aws:s3:::prod-{REGION}-starport-layer-bucket/sha256/abc"
    assert is_allowed(statements, "s3:GetObject", layer)
    assert is_allowed(statements, "s3:GetObject", f"{BUNDLES}/t/job-1")
    assert not is_allowed(statements, "s3:GetObject", "arn:aws:s3:::attacker/x")
    assert not is_allowed(
        statements, "s3:PutObject", f"arn:aws:s3:::prod-{REGION}-starport-layer-bucket/x"
    )


def test_dns_firewall_blocks_every_other_name(template: Mapping[str, Any]) -> None:
    rules = template["Resources"]["DnsFirewallRules"]["Properties"]["FirewallRules"]
    resolver = Resolver(template, PARAMETERS)
    rules = resolver.resolve(rules)
    last = max(rules, key=lambda rule: rule["Priority"])
    assert last["Action"] == "BLOCK"
    assert last["FirewallDomainListId"] == resolver.values["EveryOtherDomain"]
    assert template["Resources"]["EveryOtherDomain"]["Properties"]["Domains"] == ["*"]
    association = template["Resources"]["DnsFirewallAssociation"]["Properties"]
    assert association["VpcId"] == {"Ref": "Vpc"}
    allowed = resolver.resolve(template["Resources"]["AllowedAwsDomains"]["Properties"])
    assert "*.fta.internal." in allowed["Domains"]
    assert f"api.ecr.{REGION}.amazonaws.com." in allowed["Domains"]


def test_the_data_is_private_encrypted_and_kept(template: Mapping[str, Any]) -> None:
    database = template["Resources"]["Database"]
    properties = database["Properties"]
    assert properties["StorageEncrypted"] is True
    assert properties["PubliclyAccessible"] is False
    assert properties["DeletionProtection"] is True
    assert properties["ManageMasterUserPassword"] is True
    assert "MasterUserPassword" not in properties
    assert database["DeletionPolicy"] == "Snapshot"
    file_system = template["Resources"]["FileSystem"]
    assert file_system["Properties"]["Encrypted"] is True
    assert file_system["DeletionPolicy"] == "Retain"
    mount_subnets = {
        m["Properties"]["SubnetId"]["Ref"]
        for m in _of_type(template, "AWS::EFS::MountTarget").values()
    }
    assert mount_subnets == {"JobSubnetA", "JobSubnetB"}
    bucket = template["Resources"]["BundleBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    (expiry,) = [
        rule for rule in bucket["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in rule
    ]
    assert (expiry["Prefix"], expiry["ExpirationInDays"]) == ("bundles/", 1)
    logs = template["Resources"]["JobsLogGroup"]["Properties"]
    assert logs["LogGroupName"] == {"Fn::Sub": "/fta/${Instance}/jobs"}
    assert "RetentionInDays" in logs


def test_workers_are_several_and_replaced_without_a_gap(template: Mapping[str, Any]) -> None:
    service = template["Resources"]["WorkerService"]["Properties"]
    assert service["DesiredCount"] == {"Fn::If": ["ServicesRun", {"Ref": "WorkerCount"}, 0]}
    assert int(template["Parameters"]["WorkerCount"]["Default"]) >= 2
    # The new tasks start before the old ones stop (the leases keep them apart).
    deployment = service["DeploymentConfiguration"]
    assert deployment["MinimumHealthyPercent"] == 100
    assert deployment["MaximumPercent"] == 200


SUBNET = f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-0123456789abcdef0"


def test_the_worker_makes_tenant_subnets_in_its_vpc_tagged_with_the_job_routes(
    worker: list[Any],
) -> None:
    tagged = {"aws:RequestTag/fta:instance": INSTANCE}
    assert is_allowed(worker, "ec2:CreateSubnet", VPC_ARN, tagged)
    assert is_allowed(worker, "ec2:CreateSubnet", SUBNET, tagged)
    assert not is_allowed(worker, "ec2:CreateSubnet", SUBNET)
    other_vpc = f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-0other"
    assert not is_allowed(worker, "ec2:CreateSubnet", other_vpc, tagged)
    assert is_allowed(worker, "ec2:CreateTags", SUBNET, {"ec2:CreateAction": "CreateSubnet"})
    assert not is_allowed(worker, "ec2:CreateTags", SUBNET, {"ec2:CreateAction": "CreateVpc"})
    own = {"ec2:ResourceTag/fta:instance": INSTANCE, "ec2:Vpc": VPC_ARN}
    job_routes = f"arn:aws:ec2:{REGION}:{ACCOUNT}:route-table/jobroutetable-physical-id"
    other_routes = f"arn:aws:ec2:{REGION}:{ACCOUNT}:route-table/rtb-0services"
    assert is_allowed(worker, "ec2:AssociateRouteTable", job_routes)
    assert is_allowed(worker, "ec2:AssociateRouteTable", SUBNET, own)
    assert not is_allowed(worker, "ec2:AssociateRouteTable", other_routes)
    assert not is_allowed(worker, "ec2:AssociateRouteTable", SUBNET)
    assert is_allowed(worker, "ec2:DeleteSubnet", SUBNET, own)
    assert not is_allowed(worker, "ec2:DeleteSubnet", SUBNET)
    assert not is_allowed(worker, "ec2:CreateRoute", job_routes)


def test_the_tenant_pool_is_the_vpcs_and_the_gateway_counts_its_subnets(
    template: Mapping[str, Any],
) -> None:
    resources = template["Resources"]
    assert resources["TenantPoolCidr"]["Properties"] == {
        "VpcId": {"Ref": "Vpc"},
        "CidrBlock": {"Ref": "TenantSubnetPool"},
    }
    worker = _container(template, "WorkerTaskDefinition")["environment"]
    gateway = _container(template, "GatewayTaskDefinition")["environment"]
    for environment in (worker, gateway):
        assert environment["FTA_TENANT_SUBNET_POOL"] == "10.210.0.0/16"
        assert environment["FTA_TENANT_SUBNET_PREFIX"] == "27"
    # Tenant traffic is admitted from the pool, to the gateway, the endpoints and EFS.
    for name in ("GatewayFromTenants", "EndpointsFromTenants", "EfsFromTenants"):
        assert resources[name]["Properties"]["CidrIp"] == {"Ref": "TenantSubnetPool"}
