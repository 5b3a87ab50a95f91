"""Deploy the stack's template to a moto server and look at what was deployed.

moto's CloudFormation implements only some resource types, and of those only some properties, so the
template is deployed in three explicit parts (nothing is dropped silently: a test fails on a resource
type this module does not place, and on a bucket or table property that neither moto nor the test applies):

1. :data:`CREATED_BY_MOTO_CLOUDFORMATION`: types moto's CloudFormation creates; the resources go to
   moto unchanged.
2. :data:`STAND_INS`: types moto's CloudFormation lacks (or cannot create from this template). Each such
   resource becomes a template *parameter* of the same name whose value is a plausible physical ID or
   ARN, so the resources that refer to it (roles and policies naming the Glue database, the Athena
   workgroup, the Batch queue…) still deploy and their policy documents are still checked by moto's IAM.
3. What moto's CloudFormation skips: the ``AWS::S3::BucketPolicy`` type and the properties in
   :data:`PROPERTIES_MOTO_CLOUDFORMATION_IGNORES`. moto resolves them (``Fn::ToJsonString`` outputs, so
   every ``Ref``/``GetAtt``/``Sub`` is resolved against the deployed stack exactly as for the rest) and the
   test applies them with the service APIs, the way CloudFormation's resource handlers do.

Then the deployed lake is checked through the service APIs: encrypted with the stack's key, private,
versioned, logged, TLS-only, with the lib's lifecycle rules; the file catalog with PITR and SSE; and
``deploy/stack.py env`` renders the outputs into the aws profile's environment without credentials.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys

import pytest

from genolake_assets.lib.lake.lifecycle import lifecycle_rules
from genolake_assets.resources.lake.s3_store import aws_client
from tests.conftest import FAKE_AWS_ENVIRONMENT
from tests.deploy import (
    REPO,
    STACK_SCRIPT,
    as_list,
    build_template,
    output_target,
    references,
    resources,
    stack_module,
)

STAGE = "dev"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account

CREATED_BY_MOTO_CLOUDFORMATION = {
    "AWS::KMS::Key",
    "AWS::KMS::Alias",
    "AWS::S3::Bucket",
    "AWS::DynamoDB::Table",
    "AWS::IAM::Role",
    "AWS::IAM::InstanceProfile",
    "AWS::IAM::ManagedPolicy",
    "AWS::ECR::Repository",
    "AWS::EMR::SecurityConfiguration",
    "AWS::Batch::JobDefinition",
}
"""Found by trying with moto 5.2: each is in moto's CloudFormation model map and deploys from this template."""

STAND_INS: dict[str, tuple[str, str]] = {
    # type: (why it is not deployed to moto, the value its Ref stands for)
    "AWS::Glue::Database": ("moto's CloudFormation has no model for it", "genolake_{stage}_standin"),
    "AWS::Athena::WorkGroup": ("moto's CloudFormation has no model for it", "genolake-{stage}-standin"),
    "AWS::SecretsManager::Secret": (
        "moto's CloudFormation has no model for it",
        "arn:aws:secretsmanager:{region}:{account}:secret:genolake-{stage}-{name}-AbCdEf"),
    "AWS::Batch::ComputeEnvironment": (
        "moto's model requires ServiceRole; the template uses Batch's service-linked role",
        "arn:aws:batch:{region}:{account}:compute-environment/genolake-{stage}-{name}"),
    "AWS::Batch::JobQueue": (
        "needs the compute environment, which moto cannot create from this template",
        "arn:aws:batch:{region}:{account}:job-queue/genolake-{stage}-{name}"),
    "AWS::DataSync::LocationNFS": ("moto's CloudFormation has no DataSync models (and dev creates none)",
                                   "arn:aws:datasync:{region}:{account}:location/loc-0123456789abcdef0"),
    "AWS::DataSync::LocationS3": ("moto's CloudFormation has no DataSync models (and dev creates none)",
                                  "arn:aws:datasync:{region}:{account}:location/loc-0123456789abcdef1"),
    "AWS::DataSync::Task": ("moto's CloudFormation has no DataSync models (and dev creates none)",
                            "arn:aws:datasync:{region}:{account}:task/task-0123456789abcdef0"),
}

APPLIED_THROUGH_THE_API = {
    "AWS::S3::BucketPolicy": "moto's CloudFormation has no model for it: PutBucketPolicy with the resolved document",
}

PROPERTIES_MOTO_CLOUDFORMATION_IGNORES = {
    # moto 5.2's S3 bucket model applies BucketEncryption and Tags only; its DynamoDB table model no PITR.
    "AWS::S3::Bucket": ("VersioningConfiguration", "PublicAccessBlockConfiguration", "LifecycleConfiguration",
                        "LoggingConfiguration", "OwnershipControls"),
    "AWS::DynamoDB::Table": ("PointInTimeRecoverySpecification",),
}

PROPERTIES_MOTO_CLOUDFORMATION_APPLIES = {
    # Read from moto 5.2's create_from_cloudformation_json of each model.
    "AWS::S3::Bucket": {"BucketName", "BucketEncryption", "Tags"},
    "AWS::DynamoDB::Table": {"TableName", "KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes",
                             "LocalSecondaryIndexes", "ProvisionedThroughput", "StreamSpecification", "Tags",
                             "DeletionProtectionEnabled", "SSESpecification", "WarmThroughput", "BillingMode"},
}
"""For the data stores (buckets, tables) every property is either applied by moto or by the test."""

RESOLVED = "MotoResolved"
"""Prefix of the outputs through which moto resolves what the test applies itself."""


# -- building the template moto deploys ----------------------------------------------------------


def _stand_in_value(resource_type: str, logical_id: str, stage: str) -> str:
    return STAND_INS[resource_type][1].format(stage=stage, region=REGION, account=ACCOUNT, name=logical_id.lower())


def _replace_stand_in_attributes(value, stand_ins: dict[str, str]):
    """``Fn::GetAtt`` of a stand-in → its value; ``${Name.Attr}`` in an ``Fn::Sub`` → its value."""
    if isinstance(value, list):
        return [_replace_stand_in_attributes(v, stand_ins) for v in value]
    if not isinstance(value, dict):
        return value
    target = value.get("Fn::GetAtt")
    if isinstance(target, list) and target and target[0] in stand_ins:
        return stand_ins[target[0]]
    if "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        text, variables = (sub[0], sub[1]) if isinstance(sub, list) else (sub, None)
        text = re.sub(r"\$\{([A-Za-z0-9]+)\.[A-Za-z0-9.]+\}",
                      lambda m: stand_ins.get(m[1], m[0]), text)
        new = [text, _replace_stand_in_attributes(variables, stand_ins)] if variables is not None else text
        return {"Fn::Sub": new}
    return {k: _replace_stand_in_attributes(v, stand_ins) for k, v in value.items()}


def _work_around_moto(resource_type: str, properties: dict) -> None:
    """Two moto 5.2 CloudFormation bugs, each met by giving moto the same value in another accepted form."""
    if resource_type == "AWS::KMS::Key":
        # moto stores a KeyPolicy object as a dict and then fails to read it back (DescribeKey: 500);
        # CloudFormation takes the policy as an object or as its JSON text, so moto gets the text.
        properties["KeyPolicy"] = {"Fn::ToJsonString": properties["KeyPolicy"]}
    if resource_type == "AWS::DynamoDB::Table" and "SSESpecification" in properties:
        # moto hands CloudFormation's SSESpecification to its API model, which reads the API's `Enabled`
        # instead of CloudFormation's `SSEEnabled` (and so reports no encryption); rename it as CloudFormation does.
        sse = dict(properties["SSESpecification"])
        sse["Enabled"] = sse.pop("SSEEnabled")
        properties["SSESpecification"] = sse


def moto_template(template: dict, stage: str = STAGE) -> dict:
    """The template moto deploys (see the module docstring)."""
    template = copy.deepcopy(template)
    kept, stand_ins, resolved_outputs = {}, {}, {}
    for logical_id, body in resources(template).items():
        resource_type = body["Type"]
        if resource_type in CREATED_BY_MOTO_CLOUDFORMATION:
            kept[logical_id] = body
            _work_around_moto(resource_type, body.get("Properties", {}))
            ignored = {p: body["Properties"][p] for p in PROPERTIES_MOTO_CLOUDFORMATION_IGNORES.get(resource_type, ())
                       if p in body.get("Properties", {})}
            if ignored:
                resolved_outputs[f"{RESOLVED}{logical_id}"] = {"Value": {"Fn::ToJsonString": ignored}}
        elif resource_type in STAND_INS:
            stand_ins[logical_id] = _stand_in_value(resource_type, logical_id, stage)
        elif resource_type in APPLIED_THROUGH_THE_API:
            resolved_outputs[f"{RESOLVED}{logical_id}"] = {"Value": {"Fn::ToJsonString": body["Properties"]}}
        else:
            raise AssertionError(f"{logical_id}: resource type {resource_type} is not accounted for in this test")
    for name, value in stand_ins.items():
        template["Parameters"][name] = {"Type": "String", "Default": value,
                                        "Description": "stand-in for a resource moto cannot create"}
    template["Resources"] = _replace_stand_in_attributes(kept, stand_ins)
    template["Outputs"] = _replace_stand_in_attributes(
        {name: output for name, output in template.get("Outputs", {}).items()}, stand_ins) | resolved_outputs
    return template


def _api_lifecycle_rules(cloudformation_rules: list[dict]) -> list[dict]:
    """CloudFormation's lifecycle rule shape → PutBucketLifecycleConfiguration's (what S3's handler does).
    A key this does not know fails the test rather than being dropped."""
    rules = []
    for rule in cloudformation_rules:
        rule = dict(rule)
        prefix, tags = rule.pop("Prefix", ""), [{"Key": t["Key"], "Value": t["Value"]} for t in rule.pop("TagFilters", [])]
        out = {"ID": rule.pop("Id"), "Status": rule.pop("Status"),
               "Filter": {"And": {"Prefix": prefix, "Tags": tags}} if tags else {"Prefix": prefix}}
        if "Transitions" in rule:
            out["Transitions"] = [{"Days": int(t["TransitionInDays"]), "StorageClass": t["StorageClass"]}
                                  for t in rule.pop("Transitions")]
        if "ExpirationInDays" in rule:
            out["Expiration"] = {"Days": int(rule.pop("ExpirationInDays"))}
        if "NoncurrentVersionExpiration" in rule:
            out["NoncurrentVersionExpiration"] = {
                "NoncurrentDays": int(rule.pop("NoncurrentVersionExpiration")["NoncurrentDays"])}
        if "AbortIncompleteMultipartUpload" in rule:
            out["AbortIncompleteMultipartUpload"] = {
                "DaysAfterInitiation": int(rule.pop("AbortIncompleteMultipartUpload")["DaysAfterInitiation"])}
        assert not rule, f"lifecycle rule {out['ID']}: this test does not apply {sorted(rule)}"
        rules.append(out)
    return rules


def _apply_ignored_bucket_properties(s3, bucket: str, properties: dict) -> None:
    handled = {"VersioningConfiguration", "PublicAccessBlockConfiguration", "LifecycleConfiguration",
               "LoggingConfiguration", "OwnershipControls"}
    assert set(properties) <= handled, f"no API step for {sorted(set(properties) - handled)}"
    if "VersioningConfiguration" in properties:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=properties["VersioningConfiguration"])
    if "PublicAccessBlockConfiguration" in properties:
        s3.put_public_access_block(Bucket=bucket,
                                   PublicAccessBlockConfiguration=properties["PublicAccessBlockConfiguration"])
    if "LifecycleConfiguration" in properties:
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={
            "Rules": _api_lifecycle_rules(properties["LifecycleConfiguration"]["Rules"])})
    if "LoggingConfiguration" in properties:
        logging = properties["LoggingConfiguration"]
        _put_bucket_logging(s3, bucket, {"TargetBucket": logging["DestinationBucketName"],
                                         "TargetPrefix": logging.get("LogFilePrefix", "")})
    if "OwnershipControls" in properties:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=properties["OwnershipControls"])


def _put_bucket_logging(s3, bucket: str, logging: dict) -> None:
    """PutBucketLogging. moto checks, as S3 does, that the target bucket's policy lets the logging service
    write under the prefix, but its check fails on any statement whose Principal is the string "*" (like
    the TLS-only deny). So while logging is switched on, the target's policy is the same document without
    those statements; the full policy is put back right after."""
    target = logging["TargetBucket"]
    full = s3.get_bucket_policy(Bucket=target)["Policy"]
    document = json.loads(full)
    document["Statement"] = [s for s in as_list(document["Statement"]) if isinstance(s.get("Principal"), dict)]
    s3.put_bucket_policy(Bucket=target, Policy=json.dumps(document))
    try:
        s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={"LoggingEnabled": logging})
    finally:
        s3.put_bucket_policy(Bucket=target, Policy=full)


def _apply_ignored_table_properties(dynamodb, table: str, properties: dict) -> None:
    assert set(properties) <= {"PointInTimeRecoverySpecification"}, f"no API step for {sorted(properties)}"
    if "PointInTimeRecoverySpecification" in properties:
        spec = properties["PointInTimeRecoverySpecification"]
        dynamodb.update_continuous_backups(TableName=table, PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": spec["PointInTimeRecoveryEnabled"]})


# -- the deployed stack ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clients(moto_endpoint):
    def client(service: str):
        return aws_client(service, endpoint_url=moto_endpoint, region_name=REGION)

    return client


BATCH_NETWORK = {"BatchSubnetIds": "subnet-0123456789abcdef0", "BatchSecurityGroupIds": "sg-0123456789abcdef0"}


def _deploy(clients, stage: str, *, change_set: bool) -> tuple[dict, dict, dict[str, str]]:
    """deploy/stack.py's deploy_stack with moto's part of the template: (template, moto template, outputs)."""
    template = build_template(stage)
    body = moto_template(template, stage)
    outputs = stack_module().deploy_stack(clients("cloudformation"), stage, BATCH_NETWORK, template=body,
                                          change_set=change_set, poll=0.1, log=lambda message: None)
    return template, body, outputs


def _physical_ids(clients, stage: str) -> dict[str, str]:
    listed = clients("cloudformation").list_stack_resources(StackName=f"genolake-{stage}")["StackResourceSummaries"]
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in listed}


@pytest.fixture(scope="module")
def deployed(clients) -> dict:
    """Stack genolake-dev on moto: {"stack", "outputs", "physical", "template", "body"}.

    Deployed with CreateStack (``change_set=False``): moto runs a change set's resources but never
    computes the stack's outputs, which the checks and ``stack.py env`` read."""
    template, body, outputs = _deploy(clients, STAGE, change_set=False)
    stack = clients("cloudformation").describe_stacks(StackName=f"genolake-{STAGE}")["Stacks"][0]
    physical = _physical_ids(clients, STAGE)

    # What moto's CloudFormation skipped, applied as CloudFormation would, from moto's resolution
    # (bucket policies first: a bucket's logging needs its target's policy).
    resolved = sorted((name[len(RESOLVED):] for name in outputs if name.startswith(RESOLVED)),
                      key=lambda logical_id: resources(template)[logical_id]["Type"] != "AWS::S3::BucketPolicy")
    for logical_id in resolved:
        value = outputs[f"{RESOLVED}{logical_id}"]
        properties = json.loads(value)
        resource_type = resources(template)[logical_id]["Type"]
        if resource_type == "AWS::S3::Bucket":
            _apply_ignored_bucket_properties(clients("s3"), physical[logical_id], properties)
        elif resource_type == "AWS::DynamoDB::Table":
            _apply_ignored_table_properties(clients("dynamodb"), physical[logical_id], properties)
        elif resource_type == "AWS::S3::BucketPolicy":
            clients("s3").put_bucket_policy(Bucket=properties["Bucket"],
                                            Policy=json.dumps(properties["PolicyDocument"]))
        else:
            raise AssertionError(f"no API step for {resource_type}")
    return {"stack": stack, "outputs": outputs, "physical": physical, "template": template, "body": body}


# -- the split is explicit ----------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_resource_type_is_accounted_for(stage):
    types = {body["Type"] for body in resources(build_template(stage)).values()}
    listed = CREATED_BY_MOTO_CLOUDFORMATION | set(STAND_INS) | set(APPLIED_THROUGH_THE_API)
    assert types <= listed, f"resource types this test does not place: {sorted(types - listed)}"
    assert not CREATED_BY_MOTO_CLOUDFORMATION & set(STAND_INS)


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_data_store_property_reaches_moto(stage):
    for logical_id, body in resources(build_template(stage)).items():
        applied = PROPERTIES_MOTO_CLOUDFORMATION_APPLIES.get(body["Type"])
        if applied is None:
            continue
        unplaced = set(body.get("Properties", {})) - applied - set(PROPERTIES_MOTO_CLOUDFORMATION_IGNORES[body["Type"]])
        assert not unplaced, f"{logical_id}: neither moto nor this test applies {sorted(unplaced)}"


def test_moto_models_the_types_it_is_given():
    from moto.cloudformation.parsing import get_model_map

    assert CREATED_BY_MOTO_CLOUDFORMATION <= set(get_model_map())
    # If moto learns one of these, deploy it for real instead of standing it in.
    assert not (set(STAND_INS) | set(APPLIED_THROUGH_THE_API)) & set(get_model_map()) - {
        "AWS::Batch::ComputeEnvironment", "AWS::Batch::JobQueue"}


def test_the_stack_deploys_what_moto_supports(deployed):
    assert deployed["stack"]["StackStatus"] == "CREATE_COMPLETE"
    expected = {name for name, body in resources(deployed["body"]).items() if "Condition" not in body}
    assert expected <= set(deployed["physical"]), f"not created: {sorted(expected - set(deployed['physical']))}"
    assert {body["Type"] for body in resources(deployed["body"]).values()} == CREATED_BY_MOTO_CLOUDFORMATION


# -- what was deployed ---------------------------------------------------------------------------------


def test_the_key_rotates_and_has_its_alias(deployed, clients):
    kms = clients("kms")
    key_arn = deployed["outputs"]["KmsKeyArn"]
    assert kms.get_key_rotation_status(KeyId=key_arn)["KeyRotationEnabled"] is True
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    key_id = kms.describe_key(KeyId=key_arn)["KeyMetadata"]["KeyId"]
    assert key_id in [target for name, target in aliases.items() if name.startswith("alias/genolake")]


def test_the_lake_bucket_is_encrypted_with_the_stack_key(deployed, clients):
    s3 = clients("s3")
    rules = s3.get_bucket_encryption(Bucket=deployed["outputs"]["LakeBucket"])[
        "ServerSideEncryptionConfiguration"]["Rules"]
    default = rules[0]["ApplyServerSideEncryptionByDefault"]
    assert default["SSEAlgorithm"] == "aws:kms"
    assert default["KMSMasterKeyID"] == deployed["outputs"]["KmsKeyArn"]


def test_every_bucket_is_encrypted_private_and_tls_only(deployed, clients):
    s3 = clients("s3")
    buckets = [deployed["physical"][name] for name, body in resources(deployed["template"]).items()
               if body["Type"] == "AWS::S3::Bucket"]
    assert deployed["outputs"]["LakeBucket"] in buckets and len(buckets) >= 2
    for bucket in buckets:
        algorithm = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0][
            "ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
        assert algorithm in ("aws:kms", "AES256"), bucket
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert block == {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                         "RestrictPublicBuckets": True}, bucket
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        tls = [s for s in as_list(policy["Statement"]) if s["Effect"] == "Deny"
               and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"]
        assert tls, f"{bucket} has no TLS-only statement"
        assert sorted(as_list(tls[0]["Resource"])) == [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]


def test_the_lake_bucket_refuses_other_encryption(deployed, clients):
    policy = json.loads(clients("s3").get_bucket_policy(Bucket=deployed["outputs"]["LakeBucket"])["Policy"])
    puts = [s for s in policy["Statement"] if s["Effect"] == "Deny" and "s3:PutObject" in as_list(s["Action"])]
    conditions = json.dumps([s.get("Condition") for s in puts])
    assert "s3:x-amz-server-side-encryption" in conditions and "aws:kms" in conditions


def test_the_lake_bucket_is_versioned_logged_and_has_the_lifecycle_rules(deployed, clients):
    s3 = clients("s3")
    bucket = deployed["outputs"]["LakeBucket"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    logging = s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"]
    assert logging["TargetBucket"] == deployed["outputs"].get("LogBucket", logging["TargetBucket"])
    assert logging["TargetBucket"] != bucket
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert _comparable(rules) == _comparable(lifecycle_rules())


def test_the_log_bucket_keeps_logs_for_the_retention_parameter(deployed, clients):
    s3 = clients("s3")
    log_bucket = s3.get_bucket_logging(Bucket=deployed["outputs"]["LakeBucket"])["LoggingEnabled"]["TargetBucket"]
    template = deployed["template"]
    lake = resources(template)[output_target(template, "LakeBucket")]
    (log_id,) = references(lake["Properties"]["LoggingConfiguration"]["DestinationBucketName"])
    assert deployed["physical"][log_id] == log_bucket
    retention = [r["ExpirationInDays"] for r in resources(template)[log_id]["Properties"]["LifecycleConfiguration"][
        "Rules"] if "ExpirationInDays" in r][0]
    if isinstance(retention, dict):  # a parameter: its default was deployed
        retention = template["Parameters"][retention["Ref"]]["Default"]
    expirations = [r.get("Expiration", {}).get("Days")
                   for r in s3.get_bucket_lifecycle_configuration(Bucket=log_bucket)["Rules"]]
    assert retention in expirations
    ownership = s3.get_bucket_ownership_controls(Bucket=log_bucket)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]


def _comparable(rules: list[dict]) -> list[dict]:
    """Rules as S3 returns them may carry an empty ``Tags`` or ``NoncurrentVersion…`` defaults; keep the substance."""
    keep = ("ID", "Status", "Filter", "Transitions", "AbortIncompleteMultipartUpload")
    return sorted(({k: rule[k] for k in keep if k in rule} for rule in rules), key=lambda r: r["ID"])


def test_the_file_catalog_has_pitr_and_sse_with_the_stack_key(deployed, clients):
    dynamodb = clients("dynamodb")
    table = deployed["outputs"]["FileCatalogTable"]
    description = dynamodb.describe_table(TableName=table)["Table"]
    assert description["KeySchema"] == [{"AttributeName": "file_uri", "KeyType": "HASH"}]
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    sse = description["SSEDescription"]
    assert sse["Status"] == "ENABLED" and sse["SSEType"] == "KMS"
    assert sse["KMSMasterKeyArn"] == deployed["outputs"]["KmsKeyArn"]
    backups = dynamodb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_the_roles_and_the_orchestrator_policy_exist(deployed, clients):
    iam = clients("iam")
    roles = [n for n, b in resources(deployed["body"]).items()
             if b["Type"] == "AWS::IAM::Role" and "Condition" not in b]
    for logical_id in roles:
        assert iam.get_role(RoleName=deployed["physical"][logical_id])["Role"]["AssumeRolePolicyDocument"]
    policy_arn = deployed["outputs"]["OrchestratorPolicyArn"]
    version = iam.get_policy(PolicyArn=policy_arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=policy_arn, VersionId=version)["PolicyVersion"]["Document"]
    document = json.loads(document) if isinstance(document, str) else document
    # Every resource reference was resolved to the deployed stack (no unresolved intrinsic left).
    text = json.dumps(document)
    assert "Fn::" not in text and '"Ref"' not in text
    assert f"arn:aws:s3:::{deployed['outputs']['LakeBucket']}" in text


# -- deploy/stack.py env: the aws profile's environment from the outputs ------------------------------

CREDENTIAL_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY|CREDENTIAL|PRIVATE", re.IGNORECASE)
CREDENTIAL_VALUE = re.compile(
    r"\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{16}\b"  # access key ids
    r"|(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"  # the shape of a secret access key
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
)


def _parse_env(text: str) -> dict[str, str]:
    env = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f"not NAME=value: {line!r}"
        env[name.strip()] = json.loads(value) if value.startswith('"') else value
    return env


@pytest.fixture(scope="module")
def rendered_env(deployed, moto_endpoint, tmp_path_factory) -> tuple[str, dict[str, str]]:
    """``python deploy/stack.py env --stage dev --out <file>`` against the moto server, as a user runs it."""
    out = tmp_path_factory.mktemp("env") / ".env"
    environment = {**os.environ, **FAKE_AWS_ENVIRONMENT, "AWS_ENDPOINT_URL": moto_endpoint}
    result = subprocess.run([sys.executable, str(STACK_SCRIPT), "env", "--stage", STAGE, "--region", REGION,
                             "--out", str(out)], capture_output=True, text=True, timeout=120, cwd=REPO,
                            env=environment)
    assert result.returncode == 0, result.stdout + result.stderr
    text = out.read_text()
    return text, _parse_env(text)


def test_env_renders_the_outputs_into_the_aws_profile(deployed, rendered_env):
    _, env = rendered_env
    outputs = deployed["outputs"]
    assert env["GENOLAKE_PROFILE"] == "aws"
    lake = output_target(deployed["template"], "LakeBucket")
    assert env["GENOLAKE_S3_BUCKET"] == outputs["LakeBucket"] == deployed["physical"][lake]
    assert env["GENOLAKE_KMS_KEY_ID"] == outputs["KmsKeyArn"]
    assert env["GENOLAKE_FILE_CATALOG_TABLE"] == outputs["FileCatalogTable"]
    assert env["GENOLAKE_ATHENA_OUTPUT"] == f"s3://{outputs['LakeBucket']}/athena-results/"
    for variable, output in stack_module().ENV_OUTPUTS:
        assert env[variable] == outputs[output], variable
    expected = {"GENOLAKE_PROFILE", "GENOLAKE_S3_BUCKET", "GENOLAKE_KMS_KEY_ID", "GENOLAKE_GLUE_DATABASE",
                "GENOLAKE_ATHENA_WORKGROUP", "GENOLAKE_ATHENA_OUTPUT", "GENOLAKE_BATCH_JOB_QUEUE",
                "GENOLAKE_BATCH_JOB_DEFINITION", "GENOLAKE_FILE_CATALOG_TABLE", "GENOLAKE_PSEUDONYM_KEY_PARAMETER",
                "GENOLAKE_EMR_SERVICE_ROLE", "GENOLAKE_EMR_INSTANCE_PROFILE", "GENOLAKE_EMR_SECURITY_CONFIGURATION",
                "GENOLAKE_EMR_SUBNET_ID"}
    assert expected <= set(env) <= expected | {"AWS_REGION", "AWS_DEFAULT_REGION"}


def test_env_holds_no_credentials(rendered_env):
    text, env = rendered_env
    assert not [name for name in env if CREDENTIAL_NAME.search(name)]
    assert not CREDENTIAL_VALUE.search(text), CREDENTIAL_VALUE.search(text)
    fake_secrets = {FAKE_AWS_ENVIRONMENT[k]
                    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")}
    assert not fake_secrets & set(env.values()), "the rendered environment carries the caller's credentials"
    assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text


def test_the_settings_read_the_rendered_env(rendered_env, monkeypatch, tmp_path):
    from genolake_assets.settings import Settings

    _, env = rendered_env
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GENOLAKE_HOME", str(tmp_path))
    settings = Settings.from_env()
    assert settings.profile == "aws"
    assert settings.s3_bucket == env["GENOLAKE_S3_BUCKET"] and settings.kms_key_id == env["GENOLAKE_KMS_KEY_ID"]
    assert settings.athena_output_location == env["GENOLAKE_ATHENA_OUTPUT"]
    assert settings.file_catalog_table == env["GENOLAKE_FILE_CATALOG_TABLE"]
    assert settings.batch_job_queue == env["GENOLAKE_BATCH_JOB_QUEUE"]
    assert settings.emr_service_role == env["GENOLAKE_EMR_SERVICE_ROLE"]
    assert settings.emr_instance_profile == env["GENOLAKE_EMR_INSTANCE_PROFILE"]
    assert settings.emr_subnet_id == env["GENOLAKE_EMR_SUBNET_ID"]


# -- deploy through a change set, then destroy: the data stays ------------------------------------------


def test_a_change_set_deploys_and_destroy_keeps_the_data(deployed, clients):
    stage = "prod"  # its own stack next to genolake-dev
    template, body, _ = _deploy(clients, stage, change_set=True)
    physical = _physical_ids(clients, stage)
    assert {n for n, b in resources(body).items() if "Condition" not in b} <= set(physical)
    retained = {n: b["Type"] for n, b in resources(template).items() if b.get("DeletionPolicy") == "Retain"
                and n in physical}
    assert {"AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::KMS::Key"} <= set(retained.values())

    assert stack_module().destroy_stack(clients("cloudformation"), stage, poll=0.1, log=lambda message: None)
    assert stack_module().describe_stack(clients("cloudformation"), f"genolake-{stage}") is None
    s3, dynamodb, kms = clients("s3"), clients("dynamodb"), clients("kms")
    for name, resource_type in retained.items():
        if resource_type == "AWS::S3::Bucket":
            s3.head_bucket(Bucket=physical[name])
        elif resource_type == "AWS::DynamoDB::Table":
            assert dynamodb.describe_table(TableName=physical[name])["Table"]["TableStatus"] == "ACTIVE"
        elif resource_type == "AWS::KMS::Key":
            assert kms.describe_key(KeyId=physical[name])["KeyMetadata"]["Enabled"]
    # What is not retained is gone with the stack (e.g. the roles).
    iam = clients("iam")
    roles = [n for n, b in resources(body).items() if b["Type"] == "AWS::IAM::Role" and n in physical]
    assert roles
    for name in roles:
        with pytest.raises(iam.exceptions.NoSuchEntityException):
            iam.get_role(RoleName=physical[name])
