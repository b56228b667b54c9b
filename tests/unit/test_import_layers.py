"""The import rules of src/fta, checked on every import statement (function-level ones too):

- packages form layers: a package imports only packages of lower layers, so no two packages
  import each other, directly or round about (docs/architecture.md lists the layers);
- apps of one layer (portal, worker, gateway, ...) never import each other;
- inside a domain, routes → services → models: a `models` module imports no service or route,
  a service no route;
- Docker and AWS (boto3) are reached only from fta.runtime, PayPal only from fta.billing.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

# Top to bottom. A package may import its own modules and those of any lower layer; the
# packages of one layer are independent of each other.
LAYERS: list[set[str]] = [
    {"cli"},
    {"portal", "worker", "gateway", "migrations", "socketproxy"},
    {"models", "privacy", "operators"},
    {"billing"},
    {"bots"},
    {"jobs"},
    {"strategies"},
    {"access"},
    {"accounts"},
    {"plans"},
    {"web", "freqtrade", "runtime", "mail", "audit", "market_data"},
    {"db", "migrate", "logs", "db_privileges"},
    {"settings"},
    {"markets", "errors", "redaction", "tenantdisk", "seccomp", "prometheus"},
]
DOMAINS = {"accounts", "plans", "access", "strategies", "jobs", "bots", "billing", "operators"}
# Third-party clients that one package alone may use.
ONLY_FROM = {
    "docker": "runtime",
    "boto3": "runtime",
    "botocore": "runtime",
    "fta.billing.paypal.client": "billing",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, module: str) -> Iterator[tuple[int, str]]:
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            yield node.lineno, target
            # `from fta.x import y` may import the module fta.x.y.
            for alias in node.names:
                yield node.lineno, f"{target}.{alias.name}"


def _edges() -> Iterator[tuple[str, int, str]]:
    for path in sorted((SRC / "fta").rglob("*.py")):
        module = _module_name(path)
        for line, target in _imports(ast.parse(path.read_text(), str(path)), module):
            yield module, line, target


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _layer(package: str) -> int:
    for index, layer in enumerate(LAYERS):
        if package in layer:
            return index
    raise AssertionError(f"fta.{package} is in no layer: add it to LAYERS and the docs")


def _is_module(name: str) -> bool:
    path = SRC.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def layer_violation(module: str, target: str) -> str | None:
    """Why `module` may not import `target` by the layers, or None if it may."""
    if not target.startswith("fta.") or not _is_module(target):
        return None
    source, imported = _package(module), _package(target)
    if not source or source == imported:
        return None
    if _layer(imported) < _layer(source) or (
        _layer(imported) == _layer(source) and imported != source
    ):
        return f"imports {target} (fta.{imported} is not below)"
    return None


def layer_violations() -> list[str]:
    found = []
    for module, line, target in _edges():
        violation = layer_violation(module, target)
        if violation:
            found.append(f"{module}:{line} {violation}")
    return found


def domain_violation(module: str, target: str) -> str | None:
    """Why `module` may not import `target` by routes → services → models, or None."""
    if _package(module) not in DOMAINS or not target.startswith("fta."):
        return None
    kind, target_kind = module.rsplit(".", 1)[-1], target.rsplit(".", 1)[-1]
    if kind == "models" and target_kind in ("service", "api", "deps"):
        return f"imports {target} (a model imports no service or route)"
    if kind == "service" and (target_kind == "api" or target_kind.endswith("_api")):
        return f"imports {target} (a service imports no route)"
    return None


def test_every_package_imports_only_lower_layers() -> None:
    assert layer_violations() == []


def test_routes_call_services_which_use_models() -> None:
    found = []
    for module, line, target in _edges():
        violation = domain_violation(module, target)
        if violation:
            found.append(f"{module}:{line} {violation}")
    assert found == []


@pytest.mark.parametrize(("client", "owner"), sorted(ONLY_FROM.items()))
def test_a_client_of_the_outside_is_used_by_its_owner_alone(client: str, owner: str) -> None:
    found = [
        f"{module}:{line} imports {target}"
        for module, line, target in _edges()
        if (target == client or target.startswith(f"{client}.")) and _package(module) != owner
    ]
    assert found == []


@pytest.mark.parametrize(
    ("module", "target", "rule"),
    [
        ("fta.accounts.service", "fta.jobs.service", layer_violation),  # accounts below jobs
        ("fta.worker.main", "fta.portal.app", layer_violation),  # apps of one layer
        ("fta.gateway.app", "fta.worker.main", layer_violation),
        ("fta.settings", "fta.db", layer_violation),  # settings below db
        ("fta.runtime.docker_runner", "fta.jobs.models", layer_violation),
        ("fta.jobs.service", "fta.jobs.api", domain_violation),  # a service importing routes
        ("fta.jobs.service", "fta.jobs.storage_api", domain_violation),
        ("fta.jobs.models", "fta.jobs.service", domain_violation),  # a model importing a service
    ],
)
def test_the_rules_report_a_forbidden_import(
    module: str, target: str, rule: Callable[[str, str], str | None]
) -> None:
    assert _is_module(module) and _is_module(target)
    assert rule(module, target)


@pytest.mark.parametrize(
    ("module", "target"),
    [
        ("fta.jobs.service", "fta.accounts.service"),  # downwards
        ("fta.portal.app", "fta.jobs.api"),  # an app mounting a domain's routes
        ("fta.billing.metering", "fta.access.periods"),
        ("fta.worker.main", "fta.market_data.candle_cache"),
        ("fta.db", "fta.settings"),
        ("fta.jobs.api", "fta.jobs.service"),  # routes call services
        ("fta.jobs.service", "fta.jobs.models"),  # which use models
    ],
)
def test_the_rules_allow_an_import_downwards(module: str, target: str) -> None:
    assert _is_module(module) and _is_module(target)
    assert layer_violation(module, target) is None
    assert domain_violation(module, target) is None
