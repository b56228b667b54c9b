"""The ECS/Fargate templates (deploy/ecs) read as CloudFormation would, with test values for
what only a deployment knows (account, region, physical ids): their policies, resolved, for
the IAM evaluator (tests/support/iam_policy.py)."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = sorted((REPO / "deploy" / "ecs").glob("*.yaml"))
MAIN = REPO / "deploy" / "ecs" / "fta.yaml"
CFN_LINT = Path(sys.executable).with_name("cfn-lint")

# Test values: a fake account, the Paris region, instance "prod".
ACCOUNT = "123456789012"
REGION = "eu-west-3"
INSTANCE = "prod"
PARAMETERS = {
    "Instance": INSTANCE,
    "AppRepositoryName": "fta-prod/app",
    "AppImageVersion": ":1.0.0",
    "JobRepositoryName": "fta-prod/freqtrade",
    "JobImageVersion": ":2026.9",
    "AppSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:fta-prod/app-AbCdEf",
    "CertificateArn": f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/0000-test",
    "PublicUrl": "https://fta.example.com",
    "S3PrefixListId": "pl-0123abcd",
    "BackupBucketName": "",
    "MigrationAccess": "false",
}
# Physical ids of the resources a policy names (what Ref returns).
PHYSICAL_IDS = {
    "Cluster": f"fta-{INSTANCE}",
    "Vpc": "vpc-0aaaaaaaaaaaaaaaa",
    "FileSystem": "fs-0bbbbbbbbbbbbbbbb",
    "BundleBucket": "fta-prod-bundlebucket-test",
    "JobsLogGroup": f"/fta/{INSTANCE}/jobs",
    "ServicesLogGroup": f"/fta/{INSTANCE}/services",
    "S3Endpoint": "vpce-0ccccccccccccccccc",
    "WorkerAccessPoint": "fsap-0worker000000000",
}
CLUSTER_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/fta-{INSTANCE}"
OTHER_CLUSTER_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/other"
VPC_ARN = f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/{PHYSICAL_IDS['Vpc']}"
JOB_TASK_DEFINITION = (
    f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/fta-{INSTANCE}-t7q2mx4a-backtest-1024-2048:3"
)
JOB_TASK = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/fta-{INSTANCE}/0123456789abcdef0123456789abcdef"
BUNDLES = f"arn:aws:s3:::{PHYSICAL_IDS['BundleBucket']}/bundles"


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


JOB_TASK_ROLE = role_arn(f"fta-{INSTANCE}-job-task")
JOB_EXECUTION_ROLE = role_arn(f"fta-{INSTANCE}-job-execution")
WORKER_ROLE = role_arn(f"fta-{INSTANCE}-worker")
PORTAL_ROLE = role_arn(f"fta-{INSTANCE}-portal")
GATEWAY_ROLE = role_arn(f"fta-{INSTANCE}-gateway")
SERVICE_EXECUTION_ROLE = role_arn(f"fta-{INSTANCE}-service-execution")


# ---------------------------------------------------------------- resolving the template


class Resolver:
    """Evaluates the intrinsic functions the templates' policies use, with test values."""

    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, str]) -> None:
        self.template = template
        self.values: dict[str, Any] = {
            name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()
        }
        self.values.update(parameters)
        self.values.update(
            {
                "AWS::AccountId": ACCOUNT,
                "AWS::Region": REGION,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::StackName": f"fta-{INSTANCE}",
            }
        )
        for logical_id, resource in template["Resources"].items():
            self.values.setdefault(logical_id, self._physical_id(logical_id, resource))
        self.conditions = {
            name: self.resolve(expression)
            for name, expression in template.get("Conditions", {}).items()
        }

    def _physical_id(self, logical_id: str, resource: Mapping[str, Any]) -> str:
        if logical_id in PHYSICAL_IDS:
            return PHYSICAL_IDS[logical_id]
        if resource["Type"] == "AWS::IAM::Role":
            return str(self.resolve(resource["Properties"]["RoleName"]))
        return f"{logical_id.lower()}-physical-id"

    def attribute(self, logical_id: str, name: str) -> str:
        resource = self.template["Resources"][logical_id]
        kind = resource["Type"]
        ref = self.values[logical_id]
        if name == "Arn":
            arns = {
                "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{ref}",
                "AWS::ECS::Cluster": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{ref}",
                "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{ref}:*",
                "AWS::S3::Bucket": f"arn:aws:s3:::{ref}",
                "AWS::EFS::FileSystem": (
                    f"arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:file-system/{ref}"
                ),
                "AWS::EFS::AccessPoint": (
                    f"arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:access-point/{ref}"
                ),
            }
            if kind in arns:
                return arns[kind]
        raise KeyError(f"no test value for {logical_id}.{name} ({kind})")

    def _sub(self, text: str, local: Mapping[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in local:
                return str(local[name])
            if "." in name and name.split(".", 1)[0] in self.template["Resources"]:
                logical_id, attribute = name.split(".", 1)
                return self.attribute(logical_id, attribute)
            return str(self.values[name])

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return NO_VALUE if arg == "AWS::NoValue" else self.values[arg]
            if key == "Fn::GetAtt":
                logical_id, name = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attribute(logical_id, name)
            if key == "Fn::Sub":
                if isinstance(arg, str):
                    return self._sub(arg, {})
                text, local = arg
                return self._sub(text, {k: self.resolve(v) for k, v in local.items()})
            if key == "Fn::Join":
                separator, items = arg
                return separator.join(str(i) for i in self.resolve(items))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::If":
                condition, if_true, if_false = arg
                return self.resolve(if_true if self.conditions[condition] else if_false)
            if key == "Fn::Equals":
                left, right = (self.resolve(a) for a in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key.startswith("Fn::") or key == "Condition":
                raise NotImplementedError(key)
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}


NO_VALUE = object()


def load(path: Path) -> dict[str, Any]:
    template, matches = decode(str(path))
    assert not matches, matches
    assert template is not None
    return template


def role_statements(
    template: Mapping[str, Any], role_logical_id: str, parameters: Mapping[str, str] = PARAMETERS
) -> list[dict[str, Any]]:
    """Every identity-policy statement of a role: its inline policies, the role policies and
    managed policies of the template attached to it. An AWS managed policy fails the test."""
    resolver = Resolver(template, parameters)
    resources = template["Resources"]
    role = resources[role_logical_id]
    assert role["Type"] == "AWS::IAM::Role"
    properties = resolver.resolve(role["Properties"])
    assert not properties.get("ManagedPolicyArns"), "managed policies cannot be judged here"
    documents = [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
    for resource in resources.values():
        if resource["Type"] == "AWS::IAM::RolePolicy":
            if resource["Properties"]["RoleName"] == {"Ref": role_logical_id}:
                documents.append(resolver.resolve(resource["Properties"]["PolicyDocument"]))
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and {
            "Ref": role_logical_id
        } in resource["Properties"].get("Roles", []):
            documents.append(resolver.resolve(resource["Properties"]["PolicyDocument"]))
    statements: list[dict[str, Any]] = []
    for document in documents:
        found = document["Statement"]
        statements.extend(found if isinstance(found, list) else [found])
    return statements
