"""A count in a request body is a JSON integer: `true` is refused, not taken for 1. Every
request model of the API modules (named `...In`, or the plans' `PlanFields`) is checked, so a
new integer field cannot forget it."""

from __future__ import annotations

import importlib
import pkgutil
import typing

import pytest
from pydantic import BaseModel, ValidationError

import fta


def _request_models() -> list[type[BaseModel]]:
    models = []
    for found in pkgutil.walk_packages(fta.__path__, "fta."):
        if not found.name.endswith(("api", "_api")) and found.name != "fta.operators.plans":
            continue
        module = importlib.import_module(found.name)
        for name, value in vars(module).items():
            if (
                isinstance(value, type)
                and issubclass(value, BaseModel)
                and value.__module__ == module.__name__
                and name.endswith(("In", "Fields"))
            ):
                models.append(value)
    return models


def _integer_fields() -> list[tuple[type[BaseModel], str]]:
    return [
        (model, name)
        for model in _request_models()
        for name, field in model.model_fields.items()
        if int in (typing.get_args(field.annotation) or (field.annotation,))
    ]


def test_the_request_models_are_found() -> None:
    names = {f"{model.__name__}.{field}" for model, field in _integer_fields()}
    assert {"PersonalTokenIn.expires_in_days", "JobIn.max_seconds", "PlanFields.max_bots"} <= names


@pytest.mark.parametrize(
    ("model", "field"), _integer_fields(), ids=lambda v: getattr(v, "__name__", str(v))
)
def test_a_boolean_is_no_count(model: type[BaseModel], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate({field: True})
    # Refused as no integer at all, not as an integer out of bounds.
    assert any(
        error["loc"] == (field,) and error["type"] == "int_type" for error in refused.value.errors()
    ), refused.value
