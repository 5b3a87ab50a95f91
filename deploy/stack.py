"""Deploy, tear down and read the genolake stack (one CloudFormation stack per stage: ``genolake-<stage>``).

    python deploy/stack.py deploy  --stage dev [--region R] [--parameters K=V ...]
    python deploy/stack.py destroy --stage dev [--region R]
    python deploy/stack.py env     --stage dev [--region R] [--out .env]

``deploy`` creates or updates the stack through a change set (the template is rendered from
``deploy/template.py``, so it is always the current one), waits, and prints the outputs. Parameters
not given keep their previous value on an update. ``destroy`` deletes the stack; the lake and log
buckets, the KMS key, the file catalog table and the pseudonymisation key are retained
(DeletionPolicy Retain). ``env`` writes the ``GENOLAKE_*`` variables of the aws profile from the
stack's outputs. Credentials are never read or written here: boto3 finds them the usual way.

Every AWS call goes through a function taking a CloudFormation client, so tests run them against a
moto server.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from deploy.template import build_template

CAPABILITIES = ["CAPABILITY_IAM"]
"""The template creates unnamed IAM roles and a managed policy (no CAPABILITY_NAMED_IAM needed)."""

ENV_OUTPUTS: tuple[tuple[str, str], ...] = (
    ("GENOLAKE_S3_BUCKET", "LakeBucket"),
    ("GENOLAKE_KMS_KEY_ID", "KmsKeyArn"),
    ("GENOLAKE_GLUE_DATABASE", "GlueDatabase"),
    ("GENOLAKE_ATHENA_WORKGROUP", "AthenaWorkgroup"),
    ("GENOLAKE_ATHENA_OUTPUT", "AthenaOutput"),
    ("GENOLAKE_BATCH_JOB_QUEUE", "BatchJobQueue"),
    ("GENOLAKE_BATCH_JOB_DEFINITION", "BatchJobDefinition"),
    ("GENOLAKE_FILE_CATALOG_TABLE", "FileCatalogTable"),
    ("GENOLAKE_PSEUDONYM_KEY_PARAMETER", "PseudonymKeyParameter"),
    ("GENOLAKE_EMR_SERVICE_ROLE", "EmrServiceRoleArn"),
    ("GENOLAKE_EMR_INSTANCE_PROFILE", "EmrInstanceProfileArn"),
    ("GENOLAKE_EMR_SECURITY_CONFIGURATION", "EmrSecurityConfiguration"),
    ("GENOLAKE_EMR_SUBNET_ID", "EmrSubnetId"),
)
"""Environment variable ← stack output. GENOLAKE_PROFILE=aws (and AWS_REGION) are added; nothing else
(no credentials)."""
OPTIONAL_OUTPUTS = frozenset({"PseudonymKeyParameter"})
"""Pseudonymisation is optional (GENOLAKE_PSEUDONYMISE switches it on), so a stack without the secret's
output (moto's CloudFormation cannot create secrets) still renders an environment, minus that line."""

_IN_PROGRESS_SUFFIX = "_IN_PROGRESS"
_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")


class StackError(RuntimeError):
    """A stack operation failed; the message says which and why."""


def stack_name(stage: str) -> str:
    return f"genolake-{stage}"


def parse_parameters(pairs: Iterable[str]) -> dict[str, str]:
    """``["K=V", ...]`` → ``{"K": "V"}`` (a value may contain '=' and commas, e.g. subnet lists)."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"parameter {pair!r} is not KEY=VALUE")
        parsed[key.strip()] = value
    return parsed


# -- the CloudFormation calls (each takes a client) ---------------------------------------

def describe_stack(cfn, name: str) -> dict | None:
    """The stack's description, or None when it does not exist (or is deleted)."""
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except cfn.exceptions.ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    if not stacks or stacks[0]["StackStatus"] == "DELETE_COMPLETE":
        return None
    return stacks[0]


def stack_outputs(cfn, name: str) -> dict[str, str]:
    """``{OutputKey: OutputValue}`` of a deployed stack."""
    stack = describe_stack(cfn, name)
    if stack is None:
        raise StackError(f"stack {name} does not exist: run `make deploy STAGE=...` first")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _wait(cfn, name: str, *, timeout: float, poll: float, sleep: Callable[[float], None]) -> dict | None:
    """Poll until the stack is no longer *_IN_PROGRESS; None once it is gone."""
    deadline = time.monotonic() + timeout
    while True:
        stack = describe_stack(cfn, name)
        if stack is None or not stack["StackStatus"].endswith(_IN_PROGRESS_SUFFIX):
            return stack
        if time.monotonic() >= deadline:
            raise StackError(f"stack {name} still {stack['StackStatus']} after {timeout:g} s")
        sleep(poll)


def _failure_events(cfn, name: str, limit: int = 10) -> list[str]:
    try:
        events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    except cfn.exceptions.ClientError:  # the reasons are a courtesy; the status already says it failed
        return []
    failed = [e for e in events if e.get("ResourceStatus", "").endswith("_FAILED")]
    return [f"{e['LogicalResourceId']} ({e.get('ResourceType', '?')}): {e.get('ResourceStatusReason', '')}"
            for e in failed[:limit]]


def deploy_stack(
    cfn,
    stage: str,
    parameters: Mapping[str, str] | None = None,
    *,
    template: dict | None = None,
    change_set: bool = True,
    timeout: float = 3600.0,
    poll: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = print,
) -> dict[str, str]:
    """Create or update ``genolake-<stage>`` through a change set; returns the stack's outputs.

    ``change_set=False`` calls CreateStack/UpdateStack directly instead. moto (5.2) creates the
    resources of an executed change set but never computes the stack's outputs, so tests against a
    moto server use this."""
    name = stack_name(stage)
    template = template if template is not None else build_template(stage)
    given = {"Stage": stage, **dict(parameters or {})}
    existing = describe_stack(cfn, name)
    if existing is not None and existing["StackStatus"] == "ROLLBACK_COMPLETE":
        raise StackError(f"stack {name} is ROLLBACK_COMPLETE (its creation failed); "
                         f"run `destroy --stage {stage}` and deploy again")
    if existing is not None and existing["StackStatus"].endswith(_IN_PROGRESS_SUFFIX):
        raise StackError(f"stack {name} is {existing['StackStatus']}; wait for it to finish")
    change_type = "UPDATE" if existing is not None else "CREATE"
    declared = template.get("Parameters", {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise StackError(f"unknown parameters {unknown}; the template takes {sorted(declared)}")
    if existing is None:
        required = [k for k, spec in declared.items() if "Default" not in spec and k not in given]
        if required:
            raise StackError(f"the first deploy of {name} needs {', '.join(required)}, e.g. "
                             "--parameters BatchSubnetIds=subnet-aaa,subnet-bbb BatchSecurityGroupIds=sg-ccc "
                             "(later deploys keep them)")
    stack_parameters = [{"ParameterKey": k, "ParameterValue": v} for k, v in given.items()]
    if existing is not None:
        # Keep what the last deploy set for every parameter not given now; one that was left at its
        # default is left out, so it takes the template's default (moto also fails on UsePreviousValue
        # for a parameter that was never given).
        previous = {p["ParameterKey"]: p.get("ParameterValue") for p in existing.get("Parameters", [])}
        stack_parameters += [
            {"ParameterKey": k, "UsePreviousValue": True} for k in declared
            if k not in given and k in previous and previous[k] != _default_text(declared[k])]
    request = {
        "StackName": name, "TemplateBody": json.dumps(template), "Parameters": stack_parameters,
        "Capabilities": CAPABILITIES,
        "Tags": [{"Key": "project", "Value": "genolake"}, {"Key": "stage", "Value": stage}],
    }
    if change_set:
        change_set_name = f"genolake-{int(time.time())}"
        log(f"{change_type.lower()} {name}: change set {change_set_name}")
        cfn.create_change_set(ChangeSetName=change_set_name, ChangeSetType=change_type, **request)
        status = _wait_change_set(cfn, name, change_set_name, timeout=timeout, poll=poll, sleep=sleep)
        if status is not None:  # nothing to change
            log(status)
            cfn.delete_change_set(StackName=name, ChangeSetName=change_set_name)
            return stack_outputs(cfn, name)
        cfn.execute_change_set(StackName=name, ChangeSetName=change_set_name)
    elif change_type == "CREATE":
        log(f"create {name}")
        cfn.create_stack(**request)
    else:
        log(f"update {name}")
        try:
            cfn.update_stack(**request)
        except cfn.exceptions.ClientError as error:
            if any(marker in str(error) for marker in _NO_CHANGES):
                log(f"{name}: no changes")
                return stack_outputs(cfn, name)
            raise
    stack = _wait(cfn, name, timeout=timeout, poll=poll, sleep=sleep)
    final = stack["StackStatus"] if stack else "DELETED"
    if final not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        reasons = "\n  ".join(_failure_events(cfn, name)) or "(no failure events)"
        raise StackError(f"{change_type.lower()} of {name} ended {final}:\n  {reasons}")
    log(f"{name}: {final}")
    return stack_outputs(cfn, name)


def _default_text(parameter: Mapping) -> str | None:
    """A parameter's default as CloudFormation reports values (strings; lists comma-joined)."""
    if "Default" not in parameter:
        return None
    default = parameter["Default"]
    return ",".join(map(str, default)) if isinstance(default, list) else str(default)


def _wait_change_set(cfn, name, change_set, *, timeout, poll, sleep) -> str | None:
    """None once the change set can be executed; the reason when it has no changes; raises on failure."""
    deadline = time.monotonic() + timeout
    while True:
        described = cfn.describe_change_set(StackName=name, ChangeSetName=change_set)
        status, reason = described.get("Status"), described.get("StatusReason", "") or ""
        if status == "CREATE_COMPLETE":
            return None
        if status == "FAILED":
            if any(marker in reason for marker in _NO_CHANGES):
                return f"{name}: no changes"
            raise StackError(f"change set {change_set} of {name} failed: {reason}")
        if time.monotonic() >= deadline:
            raise StackError(f"change set {change_set} of {name} still {status} after {timeout:g} s")
        sleep(poll)


def destroy_stack(
    cfn,
    stage: str,
    *,
    timeout: float = 3600.0,
    poll: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = print,
) -> bool:
    """Delete ``genolake-<stage>``; False if there was none. Retained resources stay (see the README)."""
    name = stack_name(stage)
    if describe_stack(cfn, name) is None:
        log(f"{name}: no such stack")
        return False
    cfn.delete_stack(StackName=name)
    stack = _wait(cfn, name, timeout=timeout, poll=poll, sleep=sleep)
    if stack is not None:
        reasons = "\n  ".join(_failure_events(cfn, name)) or "(no failure events)"
        raise StackError(f"deleting {name} ended {stack['StackStatus']}:\n  {reasons}")
    log(f"{name}: deleted. Retained (delete them yourself when the data may go): the lake and log buckets, "
        "the KMS key, the file catalog table and the pseudonymisation key secret.")
    return True


# -- the environment ------------------------------------------------------------------------

def env_from_outputs(outputs: Mapping[str, str], region: str | None = None) -> dict[str, str]:
    """The aws profile's environment from the stack outputs (no credentials)."""
    missing = [output for _, output in ENV_OUTPUTS if output not in outputs and output not in OPTIONAL_OUTPUTS]
    if missing:
        raise StackError(f"the stack has no outputs {missing}: deploy the current template first")
    env = {"GENOLAKE_PROFILE": "aws"}
    env.update({variable: outputs[output] for variable, output in ENV_OUTPUTS if output in outputs})
    if region:
        env["AWS_REGION"] = region
    return env


def render_env(env: Mapping[str, str], outputs: Mapping[str, str] | None = None, stage: str = "") -> str:
    header = (f"# genolake aws profile from stack {stack_name(stage) if stage else 'genolake'} "
              "(deploy/stack.py env). No credentials here: use an AWS profile, SSO or an instance role.")
    lines = [header]
    lines += [f"{key}={_quote(value)}" for key, value in env.items()]
    for variable, output in ENV_OUTPUTS:
        if outputs is not None and output not in outputs:
            lines.append(f"# {variable}: the stack has no {output} output")
    if outputs and outputs.get("DataSyncTaskArn"):
        lines.append(f"# DataSync task for the transfer config's task_arn (GENOLAKE_TRANSFER_CONFIG): "
                     f"{outputs['DataSyncTaskArn']}")
    return "\n".join(lines) + "\n"


def _quote(value: str) -> str:
    safe = all(c.isalnum() or c in "-_./:=@,+" for c in value)
    return value if safe and value else json.dumps(value)


# -- CLI ----------------------------------------------------------------------------------------

def _client(region: str | None):
    import boto3

    return boto3.session.Session(region_name=region).client("cloudformation")


def _print_outputs(outputs: Mapping[str, str]) -> None:
    width = max((len(k) for k in outputs), default=0)
    for key in sorted(outputs):
        print(f"  {key:<{width}}  {outputs[key]}")


def main(argv: list[str] | None = None, *, client_factory: Callable[[str | None], object] = _client) -> int:
    parser = argparse.ArgumentParser(prog="deploy/stack.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command, help_text in (("deploy", "create or update the stack, print its outputs"),
                               ("destroy", "delete the stack (data buckets, KMS key and file catalog are kept)"),
                               ("env", "write the aws profile's GENOLAKE_* environment from the outputs")):
        p = sub.add_parser(command, help=help_text)
        p.add_argument("--stage", default="dev", choices=("dev", "prod"))
        p.add_argument("--region", default=None, help="AWS region (default: the AWS environment's)")
        if command == "deploy":
            p.add_argument("--parameters", nargs="*", default=[], metavar="KEY=VALUE",
                           help="template parameters, e.g. BatchSubnetIds=subnet-a,subnet-b "
                                "BamCompressImageTag=abc1234")
            p.add_argument("--no-change-set", action="store_true",
                           help="CreateStack/UpdateStack directly instead of through a reviewed change set")
        if command == "env":
            p.add_argument("--out", default="-", help="file to write (e.g. .env); '-' prints it")
    args = parser.parse_args(argv)
    cfn = client_factory(args.region)
    try:
        if args.command == "deploy":
            outputs = deploy_stack(cfn, args.stage, parse_parameters(args.parameters),
                                   change_set=not args.no_change_set)
            print(f"outputs of {stack_name(args.stage)}:")
            _print_outputs(outputs)
        elif args.command == "destroy":
            destroy_stack(cfn, args.stage)
        else:
            outputs = stack_outputs(cfn, stack_name(args.stage))
            region = args.region or getattr(getattr(cfn, "meta", None), "region_name", None)
            text = render_env(env_from_outputs(outputs, region), outputs, args.stage)
            if args.out == "-":
                sys.stdout.write(text)
            else:
                Path(args.out).write_text(text)
                print(f"wrote {args.out} ({len(text.splitlines()) - 1} lines) from {stack_name(args.stage)}")
    except (StackError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
