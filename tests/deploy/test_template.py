"""The CloudFormation template under deploy/: no drift, cfn-lint, checkov, least-privilege IAM, and the
PHI-safe storage settings (encryption, privacy, TLS-only, retention, recovery, query limits).

Everything here is offline: the template is a dict built by ``deploy/template.py`` and committed as
``deploy/genolake.template.json``; cfn-lint and checkov are the PyPI tools, run as subprocesses.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from genolake_assets.lib.lake.lifecycle import cloudformation_rules
from tests.deploy import (
    README_PATH,
    REPO,
    TEMPLATE_PATH,
    as_list,
    build_template,
    committed_template,
    output_target,
    policy_documents,
    references,
    resources,
    resources_of_type,
    statements,
)

# -- the committed template is the rendered one ----------------------------------------------


def test_committed_template_is_the_rendered_one():
    assert TEMPLATE_PATH.exists(), "deploy/genolake.template.json is missing: run `make template`"
    assert committed_template() == build_template("dev"), (
        "deploy/genolake.template.json differs from deploy/template.py's build_template('dev'): "
        "run `make template` and commit the result"
    )


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_stage_renders_to_json(stage):
    template = build_template(stage)
    assert json.loads(json.dumps(template)) == template
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"
    assert resources(template)


# -- cfn-lint ---------------------------------------------------------------------------------


def _tool(name: str) -> str:
    """The tool installed next to this Python (the project venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: `pip install -e '.[test]'` installs it")
    return found


def _cfn_lint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_tool("cfn-lint"), "--format", "parseable", str(path)],
                          capture_output=True, text=True, timeout=300, cwd=REPO)


def test_cfn_lint_is_clean_on_the_committed_template():
    result = _cfn_lint(TEMPLATE_PATH)
    assert result.returncode == 0, f"cfn-lint (exit {result.returncode}):\n{result.stdout}{result.stderr}"


def test_cfn_lint_is_clean_on_the_prod_template(tmp_path):
    path = tmp_path / "genolake-prod.template.json"
    path.write_text(json.dumps(build_template("prod"), indent=2))
    result = _cfn_lint(path)
    assert result.returncode == 0, f"cfn-lint (exit {result.returncode}):\n{result.stdout}{result.stderr}"


# -- checkov ------------------------------------------------------------------------------------
# checkov pins boto3==1.35.* (and packaging<24), which the project's boto3>=1.40 excludes, so it lives in
# its own venv (.venv-checkov, made by `make install`); GENOLAKE_CHECKOV may name another executable.

CHECKOV_VENV = REPO / ".venv-checkov"
MIN_JUSTIFICATION_WORDS = 4


def _checkov() -> str:
    for candidate in (os.environ.get("GENOLAKE_CHECKOV"), str(CHECKOV_VENV / "bin" / "checkov"),
                      shutil.which("checkov")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail("checkov is not installed: `make install` creates .venv-checkov with it "
                "(python3 -m venv .venv-checkov && .venv-checkov/bin/pip install checkov), "
                "or set GENOLAKE_CHECKOV to a checkov executable")


def _run_checkov() -> dict:
    # `checkov -f deploy/genolake.template.json --framework cloudformation --compact --quiet` is the
    # command to read by eye; the test asks for JSON (without --quiet, which drops the skipped checks).
    command = [_checkov(), "-f", str(TEMPLATE_PATH.relative_to(REPO)), "--framework", "cloudformation",
               "--compact", "--skip-download", "--output", "json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov did not report JSON (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    report = report[0] if isinstance(report, list) else report
    report["returncode"] = result.returncode
    return report


@pytest.fixture(scope="module")
def checkov_report() -> dict:
    return _run_checkov()


def test_checkov_passes(checkov_report):
    failed = checkov_report.get("results", {}).get("failed_checks", [])
    lines = [f"  {c['check_id']} {c['check_name']}: {c['resource']} (lines {c.get('file_line_range')})"
             for c in failed]
    assert not failed, "checkov failed checks (fix the template, or skip with a justification):\n" + "\n".join(lines)
    assert checkov_report["summary"]["parsing_errors"] == 0
    assert checkov_report["summary"]["resource_count"] == len(resources(build_template("dev")))
    assert checkov_report["returncode"] == 0


def test_every_checkov_skip_is_justified_inline(checkov_report):
    skipped = checkov_report.get("results", {}).get("skipped_checks", [])
    unjustified = [f"{c['check_id']} on {c['resource']}" for c in skipped
                   if len(str(c["check_result"].get("suppress_comment") or "").split()) < MIN_JUSTIFICATION_WORDS]
    assert not unjustified, f"checkov skips without a justification in the template's Metadata: {unjustified}"
    # Every skip written in the template is one checkov honoured (a typo'd or stale id skips nothing).
    written = {(name, skip["id"]) for name, body in resources(build_template("dev")).items()
               for skip in body.get("Metadata", {}).get("checkov", {}).get("skip", [])}
    honoured = {(c["resource"].split(".", 1)[1], c["check_id"]) for c in skipped}
    assert written == honoured, f"skips that checkov never applied: {sorted(written - honoured)}"


# -- IAM: no wildcards outside deploy/README.md's list -------------------------------------------

SERVICE_WILDCARD = re.compile(r"^[A-Za-z0-9-]+:\*$")


def readme_wildcard_sids() -> dict[str, str]:
    """The Sids of deploy/README.md's Resource "*" table: {Sid: reason}.

    The table is the (first) Markdown table with a column headed "Sid"; the reason is the column
    headed "reason"/"why" (else the last column)."""
    assert README_PATH.exists(), "deploy/README.md is missing"
    rows: dict[str, str] = {}
    header: list[str] | None = None
    for line in README_PATH.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.lstrip().startswith("|") else None
        if cells is None:
            if header is not None and rows:
                break
            header = None
            continue
        if header is None:
            lowered = [c.strip("`* ").lower() for c in cells]
            if "sid" in lowered:
                header = lowered
            continue
        if set("".join(cells)) <= set("-: "):
            continue  # the |---|---| line
        sid = cells[header.index("sid")].strip("`* ")
        reason_column = next((i for i, h in enumerate(header) if "reason" in h or "why" in h), len(header) - 1)
        rows[sid] = cells[reason_column] if reason_column < len(cells) else ""
    assert rows, 'deploy/README.md has no table with a "Sid" column listing the Resource "*" statements'
    return rows


def _all_statements(template: dict):
    for logical_id, resource_type, where, document in policy_documents(template):
        for statement in statements(document):
            yield logical_id, resource_type, where, statement


def test_policies_are_found():
    kinds = {resource_type for _, resource_type, _, _ in policy_documents(build_template("dev"))}
    assert {"AWS::IAM::Role", "AWS::IAM::ManagedPolicy", "AWS::S3::BucketPolicy", "AWS::KMS::Key"} <= kinds


def test_no_wildcard_actions_are_granted():
    problems = []
    for logical_id, _, where, statement in _all_statements(build_template("dev")):
        if statement.get("Effect") != "Allow":
            continue  # a Deny with s3:* restricts (e.g. the TLS-only bucket policy); it grants nothing
        label = f"{logical_id} {where} Sid={statement.get('Sid')}"
        for action in as_list(statement.get("Action")):
            if action == "*" or (isinstance(action, str) and SERVICE_WILDCARD.match(action)):
                problems.append(f"{label}: Action {action!r}")
        if "NotAction" in statement:
            problems.append(f"{label}: Allow with NotAction grants everything else")
        if "NotResource" in statement:
            problems.append(f"{label}: Allow with NotResource grants everything else")
        principal = statement.get("Principal")
        if principal == "*" or (isinstance(principal, dict) and "*" in as_list(principal.get("AWS"))):
            problems.append(f"{label}: Allow to Principal '*'")
    assert not problems, "wildcard grants:\n" + "\n".join(problems)


def _wildcard_resource_statements(template: dict) -> list[tuple[str, str, dict]]:
    found = []
    for logical_id, _, where, statement in _all_statements(template):
        # Key policies count too: there "*" means this key, and the README says so for their Sids.
        if statement.get("Effect") != "Allow":
            continue
        if "*" in as_list(statement.get("Resource")):
            found.append((logical_id, where, statement))
    return found


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_resource_wildcards_are_only_the_listed_ones(stage):
    listed = readme_wildcard_sids()
    problems = []
    for logical_id, where, statement in _wildcard_resource_statements(build_template(stage)):
        sid = statement.get("Sid")
        if not sid:
            problems.append(f"{logical_id} {where}: Resource '*' without a Sid ({statement.get('Action')})")
        elif sid not in listed:
            problems.append(f"{logical_id} {where}: Sid {sid} has Resource '*' but deploy/README.md does not list it")
    assert not problems, "\n".join(problems)


def test_readme_lists_only_real_wildcards_each_with_a_reason():
    listed = readme_wildcard_sids()
    used = {statement.get("Sid") for _, _, statement in _wildcard_resource_statements(build_template("dev"))}
    stale = sorted(set(listed) - used)
    assert not stale, f'deploy/README.md lists Sids with no Resource "*" statement: {stale}'
    assert all(len(reason.split()) >= 3 for reason in listed.values()), f"give each Sid a reason: {listed}"


# -- storage: the lake bucket, its policy and retention ---------------------------------------------


@pytest.fixture(scope="module")
def template() -> dict:
    return build_template("dev")


@pytest.fixture(scope="module")
def lake(template) -> tuple[str, dict]:
    name = output_target(template, "LakeBucket")
    assert resources(template)[name]["Type"] == "AWS::S3::Bucket"
    return name, resources(template)[name]


@pytest.fixture(scope="module")
def cmk(template) -> str:
    name = output_target(template, "KmsKeyArn")
    key = resources(template)[name]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"].get("EnableKeyRotation") is True
    return name


def test_outputs_cover_the_aws_profile(template):
    expected = {"LakeBucket", "KmsKeyArn", "GlueDatabase", "AthenaWorkgroup", "AthenaOutput", "BatchJobQueue",
                "BatchJobDefinition", "FileCatalogTable", "EcrRepositoryUri", "OrchestratorPolicyArn",
                "PseudonymKeyParameter"}
    assert expected <= set(template["Outputs"]), f"missing outputs: {sorted(expected - set(template['Outputs']))}"


def test_lifecycle_rules_come_from_the_lib(lake):
    _, bucket = lake
    assert bucket["Properties"]["LifecycleConfiguration"]["Rules"] == cloudformation_rules()


def test_lake_bucket_is_kms_encrypted_with_the_cmk(lake, cmk):
    _, bucket = lake
    (rule,) = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    default = rule["ServerSideEncryptionByDefault"]
    assert default["SSEAlgorithm"] == "aws:kms"
    assert cmk in references(default["KMSMasterKeyID"])
    assert rule.get("BucketKeyEnabled") is True


def test_lake_bucket_is_versioned_private_and_logged(template, lake):
    _, bucket = lake
    properties = bucket["Properties"]
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    (log_bucket,) = references(properties["LoggingConfiguration"]["DestinationBucketName"])
    assert resources(template)[log_bucket]["Type"] == "AWS::S3::Bucket"


def test_every_bucket_is_private_and_encrypted(template):
    for name, bucket in resources_of_type(template, "AWS::S3::Bucket").items():
        properties = bucket["Properties"]
        assert all(properties["PublicAccessBlockConfiguration"].get(flag) is True for flag in (
            "BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")), name
        algorithms = {r["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
                      for r in properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]}
        assert algorithms <= {"aws:kms", "AES256"} and algorithms, name


def _bucket_policy_statements(template: dict, bucket: str) -> list[dict]:
    policies = [p for p in resources_of_type(template, "AWS::S3::BucketPolicy").values()
                if bucket in references(p["Properties"]["Bucket"])]
    assert policies, f"no bucket policy on {bucket}"
    return [s for p in policies for s in statements(p["Properties"]["PolicyDocument"])]


def _denies_insecure_transport(statement: dict) -> bool:
    condition = statement.get("Condition", {}).get("Bool", {})
    return (statement.get("Effect") == "Deny" and str(condition.get("aws:SecureTransport")).lower() == "false"
            and any(a in ("s3:*", "*") for a in as_list(statement.get("Action"))))


def _denies_unencrypted_puts(statement: dict) -> bool:
    if statement.get("Effect") != "Deny" or not {"s3:PutObject", "s3:*"} & set(as_list(statement.get("Action"))):
        return False
    condition = statement.get("Condition", {})
    not_kms = condition.get("StringNotEquals", {}).get("s3:x-amz-server-side-encryption")
    missing = condition.get("Null", {}).get("s3:x-amz-server-side-encryption")
    return not_kms == "aws:kms" or str(missing).lower() == "true"


@pytest.mark.parametrize("output", ["LakeBucket"])
def test_lake_bucket_policy_is_tls_only_and_refuses_unencrypted_puts(template, output):
    bucket = output_target(template, output)
    policy = _bucket_policy_statements(template, bucket)
    tls = [s for s in policy if _denies_insecure_transport(s)]
    assert tls, "no statement denies aws:SecureTransport=false"
    for statement in tls:
        targets = as_list(statement.get("Resource"))
        covers_both = len(targets) == 2 and all(bucket in references(t) for t in targets)
        assert covers_both, f"the TLS deny must cover the bucket and its objects: {targets}"
    assert any(_denies_unencrypted_puts(s) for s in policy), "no statement denies puts without SSE aws:kms"


def test_every_bucket_is_tls_only(template):
    for name in resources_of_type(template, "AWS::S3::Bucket"):
        assert any(_denies_insecure_transport(s) for s in _bucket_policy_statements(template, name)), name


def test_data_is_retained(template, lake, cmk):
    retained = dict(resources_of_type(template, "AWS::S3::Bucket"))
    retained |= resources_of_type(template, "AWS::DynamoDB::Table")
    retained[cmk] = resources(template)[cmk]
    assert lake[0] in retained
    for name, body in retained.items():
        assert body.get("DeletionPolicy") == "Retain", f"{name} must have DeletionPolicy Retain"
        assert body.get("UpdateReplacePolicy") == "Retain", f"{name} must have UpdateReplacePolicy Retain"


def test_file_catalog_table_has_pitr_and_sse_with_the_cmk(template, cmk):
    table = resources(template)[output_target(template, "FileCatalogTable")]
    assert table["Type"] == "AWS::DynamoDB::Table"
    properties = table["Properties"]
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    sse = properties["SSESpecification"]
    assert sse["SSEEnabled"] is True
    assert sse.get("SSEType") == "KMS" and cmk in references(sse["KMSMasterKeyId"])
    assert properties["KeySchema"] == [{"AttributeName": "file_uri", "KeyType": "HASH"}]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"


def test_athena_workgroup_enforces_an_encrypted_output_and_a_scan_limit(template, lake, cmk):
    (name, workgroup), = resources_of_type(template, "AWS::Athena::WorkGroup").items()
    assert output_target(template, "AthenaWorkgroup") == name
    configuration = workgroup["Properties"]["WorkGroupConfiguration"]
    assert configuration["EnforceWorkGroupConfiguration"] is True
    cutoff = configuration["BytesScannedCutoffPerQuery"]
    if isinstance(cutoff, dict):  # a parameter: check its default
        (parameter,) = references(cutoff)
        cutoff = template["Parameters"][parameter]["Default"]
    # A real limit, yet above the daily cohort report's 63-160 GB at 3,202 genomes (docs/cost.md).
    assert 200 * 1024**3 <= int(cutoff) <= 1024**4
    result = configuration["ResultConfiguration"]
    assert result["EncryptionConfiguration"]["EncryptionOption"] == "SSE_KMS"
    assert cmk in references(result["EncryptionConfiguration"]["KmsKey"])
    assert lake[0] in references(result["OutputLocation"])
    assert "athena-results/" in json.dumps(result["OutputLocation"])


def test_the_ecr_repository_scans_on_push_is_immutable_and_kms_encrypted(template, cmk):
    repository = resources(template)[output_target(template, "EcrRepositoryUri")]
    assert repository["Type"] == "AWS::ECR::Repository"
    properties = repository["Properties"]
    assert properties["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert properties["ImageTagMutability"] == "IMMUTABLE"
    assert properties["EncryptionConfiguration"]["EncryptionType"] == "KMS"
    assert cmk in references(properties["EncryptionConfiguration"]["KmsKey"])
