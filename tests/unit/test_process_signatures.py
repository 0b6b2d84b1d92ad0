"""Every registered process takes exactly its spec's parameters, with the spec's defaults.

The evaluator passes only the arguments a graph gives, so a function's defaults must be the spec's:
an optional parameter without a spec default defaults to None, a required one has no default.
"""

from __future__ import annotations

import inspect

import pytest

from processes.process_table import build_registry

REGISTRY = build_registry()


def _parameters(process_id: str) -> dict[str, inspect.Parameter]:
    parameters = inspect.signature(REGISTRY[process_id].implementation).parameters
    return {name: p for name, p in parameters.items() if name != "env"}


@pytest.mark.parametrize("process_id", list(REGISTRY))
def test_process_has_the_parameters_of_its_spec(process_id):
    spec_parameters = [p["name"] for p in REGISTRY[process_id].spec["parameters"]]
    assert list(_parameters(process_id)) == spec_parameters


@pytest.mark.parametrize("process_id", list(REGISTRY))
def test_optional_parameters_default_to_the_spec_defaults(process_id):
    parameters = _parameters(process_id)
    for parameter in REGISTRY[process_id].spec["parameters"]:
        default = parameters[parameter["name"]].default
        if "default" in parameter and parameter["default"] in ({}, []) and default is None:
            continue  # an empty mutable default is spelled None in Python and read as empty
        if "default" in parameter:
            assert (list(default) if isinstance(default, tuple) else default) == parameter["default"], parameter["name"]
        elif parameter.get("optional", False):
            assert default is None, f"optional parameter {parameter['name']} needs a default"
        else:
            assert default is inspect.Parameter.empty, f"required parameter {parameter['name']} has a default"
