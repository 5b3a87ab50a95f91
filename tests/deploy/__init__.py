"""Tests of the CloudFormation stack under ``deploy/`` (issue 9), and helpers to read a template.

The helpers understand the intrinsic functions the template uses to point at its own resources
(``Ref``, ``Fn::GetAtt``, ``Fn::Sub``) so the tests can follow an output or a property to the
resource it names instead of hard-coding logical IDs.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
TEMPLATE_PATH = DEPLOY / "genolake.template.json"
README_PATH = DEPLOY / "README.md"
STACK_SCRIPT = DEPLOY / "stack.py"

_SUB_VARIABLE = re.compile(r"\$\{([A-Za-z0-9_:.]+)\}")


def build_template(stage: str = "dev") -> dict:
    """``deploy.template.build_template(stage)``, imported from the repository's deploy/ folder."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from deploy.template import build_template as build

    return build(stage)


def stack_module():
    """``deploy/stack.py`` as a module (its functions take a CloudFormation client)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from deploy import stack

    return stack


def committed_template() -> dict:
    return json.loads(TEMPLATE_PATH.read_text())


def as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def walk(value: Any) -> Iterator[Any]:
    """Every dict, list and scalar inside ``value`` (``value`` first)."""
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def references(value: Any) -> set[str]:
    """The logical IDs and parameter names ``value`` refers to through Ref, Fn::GetAtt or Fn::Sub."""
    found: set[str] = set()
    for node in walk(value):
        if not isinstance(node, dict):
            continue
        if isinstance(node.get("Ref"), str):
            found.add(node["Ref"])
        target = node.get("Fn::GetAtt")
        if isinstance(target, list) and target and isinstance(target[0], str):
            found.add(target[0])
        elif isinstance(target, str):
            found.add(target.split(".", 1)[0])
        sub = node.get("Fn::Sub")
        text = sub[0] if isinstance(sub, list) and sub else sub
        if isinstance(text, str):
            found.update(name.split(".", 1)[0] for name in _SUB_VARIABLE.findall(text))
    return found


def resources(template: dict) -> dict[str, dict]:
    return template.get("Resources", {})


def resources_of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {name: body for name, body in resources(template).items() if body.get("Type") == resource_type}


def output_target(template: dict, output: str) -> str:
    """The logical ID of the one resource an output names (e.g. ``LakeBucket`` → the bucket): the resource
    its value refers to, or else the resource with a name property (``Name``, ``DatabaseInput.Name``…)
    equal to the value (an output may repeat a name to spare a dependency)."""
    assert output in template.get("Outputs", {}), f"the template has no output {output!r}"
    value = template["Outputs"][output]["Value"]
    named = references(value) & set(resources(template))
    if not named:
        named = {logical_id for logical_id, body in resources(template).items()
                 if any(key.endswith("Name") and item == value
                        for node in walk(body.get("Properties", {})) if isinstance(node, dict)
                        for key, item in node.items())}
    assert len(named) == 1, f"output {output} names {sorted(named) or 'no resource'}, expected exactly one"
    return named.pop()


def policy_documents(template: dict) -> Iterator[tuple[str, str, str, dict]]:
    """Every IAM policy document in the template: (logical ID, resource type, where, document).

    A policy document is any object with a ``Statement``: role inline policies, managed policies,
    trust policies, bucket and key policies, repository policies… wherever they are nested
    (also both branches of an ``Fn::If``)."""
    for logical_id, body in resources(template).items():
        yield from _documents_in(logical_id, body.get("Type", ""), body.get("Properties", {}), "Properties")


def _documents_in(logical_id: str, resource_type: str, value: Any, where: str) -> Iterator[tuple[str, str, str, dict]]:
    if isinstance(value, dict):
        if "Statement" in value:
            yield logical_id, resource_type, where, value
            return
        for key, item in value.items():
            yield from _documents_in(logical_id, resource_type, item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _documents_in(logical_id, resource_type, item, f"{where}[{index}]")


def statements(document: dict) -> list[dict]:
    found = []
    for statement in as_list(document.get("Statement")):
        if isinstance(statement, dict) and "Fn::If" in statement:
            # A conditional statement: both branches count (AWS::NoValue is no statement).
            for branch in statement["Fn::If"][1:]:
                found.extend(s for s in as_list(branch) if isinstance(s, dict) and "Ref" not in s)
        else:
            found.append(statement)
    return found
