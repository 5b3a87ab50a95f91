"""The genolake CloudFormation stack, rendered from Python so nothing is copied.

``build_template(stage)`` returns the template as a dict; ``python deploy/template.py`` writes it to
``deploy/genolake.template.json`` (committed; a test fails if the file differs from
``build_template("dev")``). The S3 lifecycle rules come from ``genolake_assets.lib.lake.lifecycle`` (the one
source of truth), and every IAM statement whose ``Resource`` is ``"*"`` is listed in
:data:`WILDCARD_RESOURCE_STATEMENTS` with the reason AWS requires it (deploy/README.md has the same table).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # `python deploy/template.py` from a checkout
    sys.path.insert(0, str(_ROOT))

from genolake_assets.lib.lake.layout import (
    ATHENA_RESULTS_PREFIX,
    COHORT_PREFIX,
    COMPRESSION_RESULTS_PREFIX as RESULTS_PREFIX,
    CRAM_PREFIX,
    EMR_CODE_PREFIX as CODE_PREFIX,
    EMR_LOGS_PREFIX,
    LANDING_SEQUENCERS_PREFIX,
    RAW_BAM_PREFIX,
    RAW_VCF_PREFIX,
    REFERENCE_BLOCKS_TABLE,
    REFERENCES_PREFIX,
    REGISTRY_PREFIX,
    STAGING_COHORT_PREFIX,
    STAGING_CONVERT_PREFIX,
    VARIANTS_TABLE,
    WORK_ORDERS_PREFIX,
)
from genolake_assets.lib.lake.lifecycle import LifecycleSettings, cloudformation_rules

STAGES = ("dev", "prod")
TEMPLATE_PATH = Path(__file__).resolve().parent / "genolake.template.json"

# The roles are scoped to lake prefixes (lib/lake/layout.py; the stack's lake is the whole bucket).
VARIANTS_PREFIX = f"{VARIANTS_TABLE}/"
REFERENCE_BLOCKS_PREFIX = f"{REFERENCE_BLOCKS_TABLE}/"
EMR_COMPONENT_TAG = "genolake:component"
EMR_COMPONENT = "hail-convert"
"""The tag EmrHailConverter puts on its clusters; the orchestrator may create and act on only those."""
EMR_CLUSTER_ARN = "arn:${AWS::Partition}:elasticmapreduce:${AWS::Region}:${AWS::AccountId}:cluster/*"
ACCESS_LOG_PREFIX = "lake-access/"
BATCH_LOG_GROUP = "/aws/batch/job"
"""Batch's default awslogs group; ``AwsBatchCompressionRunner.log_group`` reads the job's log from it."""
BATCH_LOG_GROUP_ARN = f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:{BATCH_LOG_GROUP}:*"
"""The group and its streams (``...:log-group:NAME:*`` matches both ARN forms IAM checks)."""

WILDCARD_RESOURCE_STATEMENTS: dict[str, dict[str, object]] = {
    "DelegateKeyToAccountIam": {
        "where": "KMS key policy (LakeKey)",
        "actions": "key administration and use (listed, no kms:*)",
        "why": "In a key policy the Resource is always \"*\", meaning this key only. The statement hands the "
               "key to the account's IAM policies, which then grant each role its own use of it.",
    },
    "BatchDescribeJobsRequiresStar": {
        "where": "OrchestratorPolicy",
        "actions": "batch:DescribeJobs",
        "why": "DescribeJobs supports no resource-level permissions (the Service Authorization Reference lists "
               "no resource type for it); the runner polls the job it submitted.",
    },
    "DataSyncListTaskExecutionsRequiresStar": {
        "where": "OrchestratorTransferPolicy (only when the DataSync task is created)",
        "actions": "datasync:ListTaskExecutions",
        "why": "ListTaskExecutions supports no resource-level permissions; the transfer sensor filters by "
               "the task ARN in the request.",
    },
    "EmrRunJobFlowRequiresStar": {
        "where": "OrchestratorPolicy",
        "actions": "elasticmapreduce:RunJobFlow",
        "why": "RunJobFlow creates the cluster, so there is no cluster ARN to name yet; the statement allows it only "
               "with the genolake:component=hail-convert tag in the request, which every other EMR action needs.",
    },
    "EcrAuthorizationTokenRequiresStar": {
        "where": "BatchExecutionRole",
        "actions": "ecr:GetAuthorizationToken",
        "why": "The registry login token is account-wide; GetAuthorizationToken supports no resource-level "
               "permissions. Pulling layers is limited to the bam-compress repository.",
    },
}


# -- intrinsic helpers ------------------------------------------------------------------

def ref(name: str) -> dict:
    return {"Ref": name}


def sub(text: str) -> dict:
    return {"Fn::Sub": text}


def getatt(resource: str, attribute: str) -> dict:
    return {"Fn::GetAtt": [resource, attribute]}


def if_(condition: str, yes, no) -> dict:
    return {"Fn::If": [condition, yes, no]}


NO_VALUE = ref("AWS::NoValue")

# Names (Fn::Sub strings) set on the resources and reused to build their ARNs and outputs, so policies do
# not Ref resource types moto's CloudFormation cannot create (Glue, Athena, Secrets Manager): on AWS the
# value is the same as the Ref.
GLUE_DATABASE_NAME = "genolake_${Stage}"
"""Underscores: Athena/Hive identifiers cannot contain '-'."""
ATHENA_WORKGROUP_NAME = "genolake-${Stage}"
PSEUDONYM_SECRET_NAME = "genolake/${Stage}/pseudonym-key"  # noqa: S105 - the secret's name, not its value
KEY_ARN = getatt("LakeKey", "Arn")
BUCKET_ARN = getatt("LakeBucket", "Arn")


def bucket_objects(*prefixes: str) -> list[dict]:
    """ARNs of the objects under each prefix of the lake bucket."""
    return [sub(f"${{LakeBucket.Arn}}/{prefix}*") for prefix in prefixes]


def list_prefixes(*prefixes: str) -> list[str]:
    """``s3:prefix`` values for listing under each prefix (with and without its trailing slash)."""
    values: list[str] = []
    for prefix in prefixes:
        values += [prefix.rstrip("/"), f"{prefix}*"]
    return values


def tags(component: str) -> list[dict]:
    return [{"Key": "project", "Value": "genolake"}, {"Key": "stage", "Value": ref("Stage")},
            {"Key": "component", "Value": component}]


def tag_map(component: str) -> dict:
    """Tags as a map (the Batch resource types take them so)."""
    return {t["Key"]: t["Value"] for t in tags(component)}


def policy_document(*statements) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def assume_role(service: str, source_arn: str | None = None) -> dict:
    """Trust ``service``; with ``source_arn``, only on behalf of this account's resources (confused-deputy
    guard, for services that send aws:SourceArn/aws:SourceAccount: EMR, ECS tasks, DataSync)."""
    statement: dict = {"Sid": "TrustService", "Effect": "Allow", "Principal": {"Service": service},
                       "Action": "sts:AssumeRole"}
    if source_arn:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")},
                                  "ArnLike": {"aws:SourceArn": sub(source_arn)}}
    return policy_document(statement)


def kms_via(sid: str, actions: list[str], *services: str) -> dict:
    """Use of the lake key, only through the named services (kms:ViaService)."""
    return {
        "Sid": sid, "Effect": "Allow", "Action": actions, "Resource": KEY_ARN,
        "Condition": {"StringEquals": {"kms:ViaService": [sub(f"{s}.${{AWS::Region}}.amazonaws.com")
                                                          for s in services]}},
    }


KMS_READ_WRITE = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]
S3_WRITE = ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]


def retained(resource: dict) -> dict:
    """Kept when the stack is deleted or the resource replaced: data, its key, the catalog."""
    return {**resource, "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}


def checkov_skip(*pairs: tuple[str, str]) -> dict:
    return {"checkov": {"skip": [{"id": check, "comment": why} for check, why in pairs]}}


# -- parameters and conditions --------------------------------------------------------------

def parameters(stage: str) -> dict:
    return {
        "Stage": {
            "Type": "String", "Default": stage, "AllowedValues": list(STAGES),
            "Description": "Deployment stage; part of every resource name (stack genolake-<stage>).",
        },
        "SequencerShareHost": {
            "Type": "String", "Default": "",
            "Description": "NFS server of the sequencer share (DataSync source). Empty: no DataSync resources.",
        },
        "SequencerSharePath": {
            "Type": "String", "Default": "",
            "Description": "Exported path on the NFS server, e.g. /sequencers. Empty: no DataSync resources.",
        },
        "DataSyncAgentArn": {
            "Type": "String", "Default": "",
            "Description": "ARN of the activated DataSync agent that mounts the share. Empty: no DataSync resources.",
        },
        "BatchSubnetIds": {
            "Type": "List<AWS::EC2::Subnet::Id>",
            "Description": "Subnets for the Fargate compression jobs (private subnets with a NAT gateway or "
                           "VPC endpoints for ECR, S3 and CloudWatch Logs).",
        },
        "BatchSecurityGroupIds": {
            "Type": "List<AWS::EC2::SecurityGroup::Id>",
            "Description": "Security groups of the compression jobs (outbound HTTPS only is enough).",
        },
        "BatchAssignPublicIp": {
            "Type": "String", "Default": "DISABLED", "AllowedValues": ["ENABLED", "DISABLED"],
            "Description": "ENABLED only if the Batch subnets are public (no NAT): Fargate then pulls the image "
                           "over a public IP.",
        },
        "BatchComputeType": {
            "Type": "String", "Default": "FARGATE", "AllowedValues": ["FARGATE", "FARGATE_SPOT"],
            "Description": "FARGATE_SPOT costs up to 70% less; an interrupted job is retried and starts over.",
        },
        "BatchMaxVcpus": {
            "Type": "Number", "Default": 64, "MinValue": 4,
            "Description": "Upper bound of concurrently running vCPUs (4 per compression job).",
        },
        "BatchServiceRoleArn": {
            "Type": "String", "Default": "",
            "Description": "Service role of the Batch compute environment. Empty (recommended): Batch's "
                           "service-linked role AWSServiceRoleForBatch.",
        },
        "BamCompressImageTag": {
            "Type": "String", "Default": "unset", "AllowedPattern": "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}",
            "Description": "Tag of the bam-compress image pushed to the stack's ECR repository (the repository's "
                           "tags are immutable: use the git commit, e.g. $(git rev-parse --short HEAD)).",
        },
        "AthenaBytesScannedCutoff": {
            "Type": "Number", "Default": 250 * 1024 ** 3, "MinValue": 10_000_000,
            "Description": "Athena cancels a query of the workgroup that scans more than this many bytes "
                           "(default 250 GiB, about $1.25: the daily cohort report scans 63-160 GB at "
                           "3,202 genomes, docs/cost.md).",
        },
        "EmrTlsCertificatesKey": {
            "Type": "String", "Default": "",
            "Description": "Key in the lake bucket of a zip of PEM files (privateKey.pem, certificateChain.pem, "
                           "trustedCertificates.pem) for EMR in-transit encryption. Empty: at-rest encryption only "
                           "(see deploy/README.md).",
        },
        "OrchestratorRoleName": {
            "Type": "String", "Default": "",
            "Description": "Name of an existing IAM role that runs Dagster; the orchestrator policies are attached "
                           "to it. Empty: attach OrchestratorPolicyArn (and OrchestratorTransferPolicyArn) yourself.",
        },
        "AccessLogRetentionDays": {
            "Type": "Number", "Default": 365, "MinValue": 1,
            "Description": "Days the lake bucket's S3 server access logs are kept in the log bucket.",
        },
    }


def conditions() -> dict:
    return {
        "CreateDataSync": {"Fn::And": [
            {"Fn::Not": [{"Fn::Equals": [ref("SequencerShareHost"), ""]}]},
            {"Fn::Not": [{"Fn::Equals": [ref("SequencerSharePath"), ""]}]},
            {"Fn::Not": [{"Fn::Equals": [ref("DataSyncAgentArn"), ""]}]},
        ]},
        "EmrInTransitEncryption": {"Fn::Not": [{"Fn::Equals": [ref("EmrTlsCertificatesKey"), ""]}]},
        "AttachToOrchestratorRole": {"Fn::Not": [{"Fn::Equals": [ref("OrchestratorRoleName"), ""]}]},
        "BatchCustomServiceRole": {"Fn::Not": [{"Fn::Equals": [ref("BatchServiceRoleArn"), ""]}]},
    }


# -- encryption, storage ----------------------------------------------------------------------

def kms_resources() -> dict:
    key_actions = [
        # administration
        "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:DeleteAlias", "kms:DescribeKey", "kms:DisableKey",
        "kms:DisableKeyRotation", "kms:EnableKey", "kms:EnableKeyRotation", "kms:GetKeyPolicy",
        "kms:GetKeyRotationStatus", "kms:ListAliases", "kms:ListGrants", "kms:ListKeyPolicies",
        "kms:ListResourceTags", "kms:PutKeyPolicy", "kms:RetireGrant", "kms:RevokeGrant",
        "kms:RotateKeyOnDemand", "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:UntagResource",
        "kms:UpdateAlias", "kms:UpdateKeyDescription",
        # use (granted to each role by its IAM policy)
        "kms:CreateGrant", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey",
        "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo",
    ]
    return {
        "LakeKey": retained({
            "Type": "AWS::KMS::Key",
            "Properties": {
                "Description": sub("genolake ${Stage}: encrypts the lake, Athena results, the file catalog, "
                                   "the pseudonymisation key, EMR disks and the ECR repository"),
                "EnableKeyRotation": True,
                "PendingWindowInDays": 30,
                "KeyPolicy": policy_document({
                    "Sid": "DelegateKeyToAccountIam",
                    "Effect": "Allow",
                    "Principal": {"AWS": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")},
                    "Action": key_actions,
                    "Resource": "*",
                }),
                # no Tags: moto's KMS handler reads them as TagKey/TagValue and fails on CloudFormation's Key/Value
            },
        }),
        "LakeKeyAlias": {
            "Type": "AWS::KMS::Alias",
            "Properties": {"AliasName": sub("alias/genolake-${Stage}"), "TargetKeyId": ref("LakeKey")},
        },
    }


def bucket_resources() -> dict:
    def tls_only(bucket: str) -> dict:
        return {
            "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [getatt(bucket, "Arn"), sub(f"${{{bucket}.Arn}}/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }

    public_access_block = {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }
    owner_enforced = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    return {
        "LogBucket": retained({
            "Type": "AWS::S3::Bucket",
            "Metadata": checkov_skip(
                ("CKV_AWS_18", "This is the access-log bucket; logging it into itself would loop."),
            ),
            "Properties": {
                "BucketName": sub("genolake-${Stage}-logs-${AWS::AccountId}-${AWS::Region}"),
                "BucketEncryption": {"ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
                "PublicAccessBlockConfiguration": public_access_block,
                "OwnershipControls": owner_enforced,
                "VersioningConfiguration": {"Status": "Enabled"},
                "LifecycleConfiguration": {"Rules": [{
                    "Id": "expire-access-logs", "Status": "Enabled",
                    "ExpirationInDays": ref("AccessLogRetentionDays"),
                    "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                }]},
                "Tags": tags("logs"),
            },
        }),
        "LogBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": ref("LogBucket"),
                "PolicyDocument": policy_document(
                    tls_only("LogBucket"),
                    {
                        "Sid": "AllowLakeServerAccessLogs", "Effect": "Allow",
                        "Principal": {"Service": "logging.s3.amazonaws.com"},
                        "Action": "s3:PutObject",
                        "Resource": sub(f"${{LogBucket.Arn}}/{ACCESS_LOG_PREFIX}*"),
                        "Condition": {
                            # the lake bucket's ARN is built from its name: referencing the bucket would be
                            # a cycle (it logs into this one)
                            "ArnLike": {"aws:SourceArn": sub(
                                "arn:${AWS::Partition}:s3:::genolake-${Stage}-lake-${AWS::AccountId}-${AWS::Region}")},
                            "StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")},
                        },
                    },
                ),
            },
        },
        "LakeBucket": retained({
            "Type": "AWS::S3::Bucket",
            "DependsOn": ["LogBucketPolicy"],
            "Properties": {
                "BucketName": sub("genolake-${Stage}-lake-${AWS::AccountId}-${AWS::Region}"),
                "BucketEncryption": {"ServerSideEncryptionConfiguration": [{
                    "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY_ARN},
                    "BucketKeyEnabled": True,
                }]},
                "PublicAccessBlockConfiguration": public_access_block,
                "OwnershipControls": owner_enforced,
                "VersioningConfiguration": {"Status": "Enabled"},
                "LoggingConfiguration": {"DestinationBucketName": ref("LogBucket"), "LogFilePrefix": ACCESS_LOG_PREFIX},
                # the one source of truth: genolake_assets/lib/lake/lifecycle.py (the lake is the whole bucket)
                "LifecycleConfiguration": {"Rules": cloudformation_rules(LifecycleSettings())},
                "Tags": tags("lake"),
            },
        }),
        "LakeBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": ref("LakeBucket"),
                "PolicyDocument": policy_document(
                    tls_only("LakeBucket"),
                    {
                        # Default encryption (SSE-KMS with the lake key) covers a put without the header,
                        # so nothing is ever stored unencrypted; this denies a put that asks for anything
                        # weaker (AES256) than aws:kms. A "header missing" deny is not used: UploadPart
                        # never carries the header (every multipart upload would fail) and DataSync relies
                        # on default encryption.
                        "Sid": "DenyPutsNotSseKms", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                        "Resource": sub("${LakeBucket.Arn}/*"),
                        "Condition": {
                            "StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
                            "Null": {"s3:x-amz-server-side-encryption": "false"},
                        },
                    },
                    {
                        "Sid": "DenyPutsWithOtherKmsKey", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                        "Resource": sub("${LakeBucket.Arn}/*"),
                        "Condition": {
                            "StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": KEY_ARN},
                            "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"},
                        },
                    },
                ),
            },
        },
    }


def catalog_resources() -> dict:
    return {
        "GlueDatabase": {
            "Type": "AWS::Glue::Database",
            "Properties": {
                "CatalogId": ref("AWS::AccountId"),
                "DatabaseInput": {
                    "Name": sub(GLUE_DATABASE_NAME),
                    "Description": "genolake: tables over the lake's Parquet files",
                },
            },
        },
        "AthenaWorkGroup": {
            "Type": "AWS::Athena::WorkGroup",
            "Properties": {
                "Name": sub(ATHENA_WORKGROUP_NAME),
                "Description": "genolake queries: enforced, KMS-encrypted result location and a per-query scan limit",
                "State": "ENABLED",
                "RecursiveDeleteOption": True,
                "WorkGroupConfiguration": {
                    "EnforceWorkGroupConfiguration": True,
                    "PublishCloudWatchMetricsEnabled": True,
                    "BytesScannedCutoffPerQuery": ref("AthenaBytesScannedCutoff"),
                    "EngineVersion": {"SelectedEngineVersion": "Athena engine version 3"},
                    "ResultConfiguration": {
                        "OutputLocation": sub(f"s3://${{LakeBucket}}/{ATHENA_RESULTS_PREFIX}"),
                        "EncryptionConfiguration": {"EncryptionOption": "SSE_KMS", "KmsKey": KEY_ARN},
                        "ExpectedBucketOwner": ref("AWS::AccountId"),
                    },
                },
                "Tags": tags("query"),
            },
        },
        "FileCatalogTable": retained({
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "TableName": sub("genolake-${Stage}-file-catalog"),
                "AttributeDefinitions": [{"AttributeName": "file_uri", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "file_uri", "KeyType": "HASH"}],
                "BillingMode": "PAY_PER_REQUEST",
                "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": KEY_ARN},
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "DeletionProtectionEnabled": True,
                "Tags": tags("file-catalog"),
            },
        }),
        "PseudonymKey": retained({
            "Type": "AWS::SecretsManager::Secret",
            # no rotation: a new key would give every sample a new pseudonym (docs/phi.md)
            "Properties": {
                "Name": sub(PSEUDONYM_SECRET_NAME),
                "Description": "HMAC key for pseudonymising sample identifiers in object keys and partition "
                               "values (docs/phi.md). Never rotate: pseudonyms are derived from it.",
                "KmsKeyId": KEY_ARN,
                # 64 hex digits = a 256-bit key, the text form genolake reads (like `openssl rand -hex 32`)
                "GenerateSecretString": {
                    "PasswordLength": 64, "ExcludeUppercase": True, "ExcludePunctuation": True, "IncludeSpace": False,
                    "ExcludeCharacters": "ghijklmnopqrstuvwxyz", "RequireEachIncludedType": False,
                },
                "Tags": tags("phi"),
            },
        }),
    }


# -- EMR ------------------------------------------------------------------------------------

def emr_resources() -> dict:
    read_prefixes = (RAW_VCF_PREFIX, CODE_PREFIX)
    # cohort/ and staging/cohort/: the Spark cohort update (spark/cohort_update.py) writes partition files
    write_prefixes = (VARIANTS_PREFIX, REFERENCE_BLOCKS_PREFIX, REGISTRY_PREFIX, EMR_LOGS_PREFIX, STAGING_CONVERT_PREFIX,
                      COHORT_PREFIX, STAGING_COHORT_PREFIX)
    instance_statements = [
        {
            "Sid": "ListLakePrefixes", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": BUCKET_ARN,
            "Condition": {"StringLike": {"s3:prefix": list_prefixes(*read_prefixes, *write_prefixes)}},
        },
        {"Sid": "LocateLakeBucket", "Effect": "Allow", "Action": "s3:GetBucketLocation", "Resource": BUCKET_ARN},
        {"Sid": "ReadRawVcfAndJobCode", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": bucket_objects(*read_prefixes)},
        {
            # Spark/Hail committers write temporary objects under the output prefix and delete them.
            "Sid": "WriteVariantPrefixes", "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:DeleteObject", *S3_WRITE],
            "Resource": bucket_objects(*write_prefixes),
        },
        kms_via("UseLakeKeyThroughS3", KMS_READ_WRITE, "s3"),
        {
            # EMR local-disk encryption asks KMS for data keys from the instances themselves (not through
            # another service), so this statement has no kms:ViaService condition.
            "Sid": "LocalDiskEncryption", "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey",
                       "kms:GenerateDataKeyWithoutPlaintext"],
            "Resource": KEY_ARN,
        },
    ]
    tls = {"TLSCertificateConfiguration": {
        "CertificateProviderType": "PEM",
        "S3Object": sub("s3://${LakeBucket}/${EmrTlsCertificatesKey}"),
    }}
    return {
        "EmrServiceRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "EMR service role: AmazonEMRServicePolicy_v2 (AWS managed) + passing the job role and "
                               "EBS encryption grants on the lake key",
                "AssumeRolePolicyDocument": assume_role(
                    "elasticmapreduce.amazonaws.com",
                    "arn:${AWS::Partition}:elasticmapreduce:${AWS::Region}:${AWS::AccountId}:*"),
                "ManagedPolicyArns": [
                    sub("arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonEMRServicePolicy_v2")],
                "Policies": [{
                    "PolicyName": "genolake-emr-service",
                    "PolicyDocument": policy_document(
                        {
                            "Sid": "PassJobRoleToEc2", "Effect": "Allow", "Action": "iam:PassRole",
                            "Resource": getatt("EmrJobRole", "Arn"),
                            "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
                        },
                        {
                            "Sid": "EbsEncryptionGrants", "Effect": "Allow", "Action": "kms:CreateGrant",
                            "Resource": KEY_ARN,
                            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
                        },
                        kms_via("EbsEncryptionKeyUse", ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt",
                                                        "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom",
                                                        "kms:ReEncryptTo"], "ec2"),
                    ),
                }],
                "Tags": tags("emr"),
            },
        },
        "EmrJobRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "EMR cluster instances (Hail conversion, Spark cohort update): read raw/vcf/ and "
                               "code/, write variants/, reference_blocks/, registry/, cohort/ and the cluster logs",
                # EC2 sends no aws:SourceArn/SourceAccount when an instance assumes its profile's role
                "AssumeRolePolicyDocument": assume_role("ec2.amazonaws.com"),
                "Policies": [{"PolicyName": "genolake-emr-job",
                              "PolicyDocument": policy_document(*instance_statements)}],
                "Tags": tags("emr"),
            },
        },
        "EmrTlsCertificatesPolicy": {
            # a separate policy rather than an Fn::If inside the role's statements: policy scanners
            # (checkov) cannot read a statement list built by Fn::If, and moto rejects AWS::NoValue in it
            "Condition": "EmrInTransitEncryption",
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "Description": "EMR instances: read the in-transit encryption certificates zip",
                "Roles": [ref("EmrJobRole")],
                "PolicyDocument": policy_document({
                    "Sid": "ReadTlsCertificates", "Effect": "Allow", "Action": "s3:GetObject",
                    "Resource": sub("${LakeBucket.Arn}/${EmrTlsCertificatesKey}"),
                }),
            },
        },
        "EmrInstanceProfile": {
            "Type": "AWS::IAM::InstanceProfile",
            "Properties": {"Roles": [ref("EmrJobRole")]},
        },
        "EmrSecurityConfiguration": {
            "Type": "AWS::EMR::SecurityConfiguration",
            "Properties": {"SecurityConfiguration": {
                "EncryptionConfiguration": {
                    "EnableAtRestEncryption": True,
                    "AtRestEncryptionConfiguration": {
                        "S3EncryptionConfiguration": {"EncryptionMode": "SSE-KMS", "AwsKmsKey": KEY_ARN},
                        "LocalDiskEncryptionConfiguration": {
                            "EncryptionKeyProviderType": "AwsKms", "AwsKmsKey": KEY_ARN, "EnableEbsEncryption": True,
                        },
                    },
                    "EnableInTransitEncryption": if_("EmrInTransitEncryption", True, False),
                    "InTransitEncryptionConfiguration": if_("EmrInTransitEncryption", tls, NO_VALUE),
                },
                "InstanceMetadataServiceConfiguration": {
                    "MinimumInstanceMetadataServiceVersion": 2, "HttpPutResponseHopLimit": 1,
                },
            }},
        },
    }


# -- Batch, ECR -------------------------------------------------------------------------------

def batch_resources() -> dict:
    read_prefixes = (RAW_BAM_PREFIX, REFERENCES_PREFIX, WORK_ORDERS_PREFIX)
    write_prefixes = (CRAM_PREFIX, RESULTS_PREFIX)
    ecs_tasks = ("ecs-tasks.amazonaws.com", "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:*")
    return {
        "BamCompressRepository": {
            "Type": "AWS::ECR::Repository",
            "Properties": {
                "RepositoryName": sub("genolake-${Stage}/bam-compress"),
                "ImageScanningConfiguration": {"ScanOnPush": True},
                "ImageTagMutability": "IMMUTABLE",
                "EncryptionConfiguration": {"EncryptionType": "KMS", "KmsKey": KEY_ARN},
                # images are rebuilt from git; deleting the stack removes them with the repository
                "EmptyOnDelete": True,
                "LifecyclePolicy": {"LifecyclePolicyText": json.dumps({"rules": [{
                    "rulePriority": 1, "description": "keep the 20 most recent images",
                    "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 20},
                    "action": {"type": "expire"},
                }]}, separators=(",", ":"))},
                "Tags": tags("bam-compress"),
            },
        },
        "BatchJobRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "bam-compress job: read BAMs, references and work orders; write CRAMs and results",
                "AssumeRolePolicyDocument": assume_role(*ecs_tasks),
                "Policies": [{"PolicyName": "genolake-bam-compress-job", "PolicyDocument": policy_document(
                    {
                        # lets a missing reference index come back as 404 (not 403) inside these prefixes
                        "Sid": "ListJobPrefixes", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": BUCKET_ARN,
                        "Condition": {"StringLike": {"s3:prefix": list_prefixes(*read_prefixes, *write_prefixes)}},
                    },
                    {"Sid": "ReadInputs", "Effect": "Allow", "Action": "s3:GetObject",
                     "Resource": bucket_objects(*read_prefixes)},
                    {"Sid": "WriteOutputs", "Effect": "Allow", "Action": ["s3:GetObject", *S3_WRITE],
                     "Resource": bucket_objects(*write_prefixes)},
                    kms_via("UseLakeKeyThroughS3", KMS_READ_WRITE, "s3"),
                )}],
                "Tags": tags("bam-compress"),
            },
        },
        "BatchExecutionRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "Fargate task execution for bam-compress: pull the image, write the job log",
                "AssumeRolePolicyDocument": assume_role(*ecs_tasks),
                "Policies": [{"PolicyName": "genolake-bam-compress-execution", "PolicyDocument": policy_document(
                    {"Sid": "EcrAuthorizationTokenRequiresStar", "Effect": "Allow",
                     "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
                    {"Sid": "PullBamCompressImage", "Effect": "Allow",
                     "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                     "Resource": getatt("BamCompressRepository", "Arn")},
                    {"Sid": "WriteJobLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                     "Resource": sub(BATCH_LOG_GROUP_ARN)},
                )}],
                "Tags": tags("bam-compress"),
            },
        },
        "BatchComputeEnvironment": {
            "Type": "AWS::Batch::ComputeEnvironment",
            "Properties": {
                # default: no ServiceRole, so Batch uses its service-linked role (AWSServiceRoleForBatch)
                "ServiceRole": if_("BatchCustomServiceRole", ref("BatchServiceRoleArn"), NO_VALUE),
                "Type": "MANAGED",
                "State": "ENABLED",
                "ComputeResources": {
                    "Type": ref("BatchComputeType"),
                    "MaxvCpus": ref("BatchMaxVcpus"),
                    "Subnets": ref("BatchSubnetIds"),
                    "SecurityGroupIds": ref("BatchSecurityGroupIds"),
                },
                "Tags": tag_map("bam-compress"),
            },
        },
        "BatchJobQueue": {
            "Type": "AWS::Batch::JobQueue",
            "Properties": {
                "JobQueueName": sub("genolake-${Stage}-bam-compress"),
                "Priority": 1,
                "State": "ENABLED",
                "ComputeEnvironmentOrder": [{"Order": 1, "ComputeEnvironment": ref("BatchComputeEnvironment")}],
                "Tags": tag_map("bam-compress"),
            },
        },
        "BatchJobDefinition": {
            "Type": "AWS::Batch::JobDefinition",
            "Properties": {
                "JobDefinitionName": sub("genolake-${Stage}-bam-compress"),
                "Type": "container",
                "PlatformCapabilities": ["FARGATE"],
                "PropagateTags": True,
                "Timeout": {"AttemptDurationSeconds": 12 * 3600},
                # exit 1 = unexpected (retry); 2 = verification mismatch and 3 = bad input fail the same way again
                # (and a Fargate Spot interruption is retried whatever the exit code)
                "RetryStrategy": {"Attempts": 3, "EvaluateOnExit": [
                    {"OnStatusReason": "Your Spot Task was interrupted*", "Action": "RETRY"},
                    {"OnExitCode": "1", "Action": "RETRY"},
                    {"OnExitCode": "*", "Action": "EXIT"},
                ]},
                "ContainerProperties": {
                    "Image": sub("${BamCompressRepository.RepositoryUri}:${BamCompressImageTag}"),
                    "Command": [],
                    "JobRoleArn": getatt("BatchJobRole", "Arn"),
                    "ExecutionRoleArn": getatt("BatchExecutionRole", "Arn"),
                    "ResourceRequirements": [{"Type": "VCPU", "Value": "4"}, {"Type": "MEMORY", "Value": "16384"}],
                    "EphemeralStorage": {"SizeInGiB": 200},
                    "NetworkConfiguration": {"AssignPublicIp": ref("BatchAssignPublicIp")},
                    "FargatePlatformConfiguration": {"PlatformVersion": "LATEST"},
                    "Environment": [{"Name": "GENOLAKE_KMS_KEY_ID", "Value": KEY_ARN}],
                    "Privileged": False,
                },
                "Tags": tag_map("bam-compress"),
            },
        },
    }


# -- DataSync -----------------------------------------------------------------------------------

def datasync_resources() -> dict:
    conditional = {"Condition": "CreateDataSync"}
    return {
        "DataSyncRole": {
            **conditional,
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "DataSync: write sequencer runs under landing/sequencers/ in the lake",
                "AssumeRolePolicyDocument": assume_role(
                    "datasync.amazonaws.com", "arn:${AWS::Partition}:datasync:${AWS::Region}:${AWS::AccountId}:*"),
                "Policies": [{"PolicyName": "genolake-datasync", "PolicyDocument": policy_document(
                    {"Sid": "LocateLakeBucket", "Effect": "Allow",
                     "Action": ["s3:GetBucketLocation", "s3:ListBucketMultipartUploads"], "Resource": BUCKET_ARN},
                    {"Sid": "ListLanding", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": BUCKET_ARN,
                     "Condition": {"StringLike": {"s3:prefix": list_prefixes(LANDING_SEQUENCERS_PREFIX)}}},
                    {"Sid": "WriteLanding", "Effect": "Allow",
                     "Action": ["s3:GetObject", "s3:GetObjectTagging", "s3:PutObjectTagging", "s3:DeleteObject",
                                *S3_WRITE],
                     "Resource": bucket_objects(LANDING_SEQUENCERS_PREFIX)},
                    kms_via("UseLakeKeyThroughS3", KMS_READ_WRITE, "s3"),
                )}],
                "Tags": tags("transfer"),
            },
        },
        "SequencerShareLocation": {
            **conditional,
            "Type": "AWS::DataSync::LocationNFS",
            "Properties": {
                "ServerHostname": ref("SequencerShareHost"),
                "Subdirectory": ref("SequencerSharePath"),
                "OnPremConfig": {"AgentArns": [ref("DataSyncAgentArn")]},
                "MountOptions": {"Version": "AUTOMATIC"},
                "Tags": tags("transfer"),
            },
        },
        "LandingLocation": {
            **conditional,
            "Type": "AWS::DataSync::LocationS3",
            "Properties": {
                "S3BucketArn": BUCKET_ARN,
                "Subdirectory": f"/{LANDING_SEQUENCERS_PREFIX}",
                "S3StorageClass": "STANDARD",
                "S3Config": {"BucketAccessRoleArn": getatt("DataSyncRole", "Arn")},
                "Tags": tags("transfer"),
            },
        },
        "SequencerTransferTask": {
            **conditional,
            "Type": "AWS::DataSync::Task",
            "Properties": {
                "Name": sub("genolake-${Stage}-sequencer-runs"),
                "SourceLocationArn": getatt("SequencerShareLocation", "LocationArn"),
                "DestinationLocationArn": getatt("LandingLocation", "LocationArn"),
                "Options": {
                    "VerifyMode": "ONLY_FILES_TRANSFERRED",
                    "TransferMode": "CHANGED",
                    "OverwriteMode": "ALWAYS",
                    "PreserveDeletedFiles": "PRESERVE",
                    "LogLevel": "OFF",
                },
                "Tags": tags("transfer"),
            },
        },
    }


# -- the orchestrator (the Dagster code location) ----------------------------------------------

def orchestrator_policy() -> dict:
    glue = "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}"
    attach_to_orchestrator = if_("AttachToOrchestratorRole", [ref("OrchestratorRoleName")], NO_VALUE)
    batch = "arn:${AWS::Partition}:batch:${AWS::Region}:${AWS::AccountId}"
    statements = [
        {"Sid": "LakeBucket", "Effect": "Allow",
         "Action": ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads",
                    "s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration"],
         "Resource": BUCKET_ARN},
        {"Sid": "LakeObjects", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:DeleteObject", "s3:GetObjectTagging", "s3:PutObjectTagging", *S3_WRITE],
         "Resource": sub("${LakeBucket.Arn}/*")},
        {"Sid": "GlueTables", "Effect": "Allow",
         "Action": ["glue:GetDatabase", "glue:CreateDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable",
                    "glue:UpdateTable", "glue:DeleteTable", "glue:GetPartition", "glue:GetPartitions",
                    "glue:BatchGetPartition", "glue:CreatePartition", "glue:BatchCreatePartition",
                    "glue:UpdatePartition", "glue:BatchUpdatePartition", "glue:DeletePartition",
                    "glue:BatchDeletePartition"],
         "Resource": [sub(f"{glue}:catalog"), sub(f"{glue}:database/{GLUE_DATABASE_NAME}"),
                      sub(f"{glue}:table/{GLUE_DATABASE_NAME}/*")]},
        {"Sid": "AthenaWorkGroup", "Effect": "Allow",
         "Action": ["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults",
                    "athena:StopQueryExecution", "athena:GetWorkGroup"],
         "Resource": sub("arn:${AWS::Partition}:athena:${AWS::Region}:${AWS::AccountId}:workgroup/"
                         + ATHENA_WORKGROUP_NAME)},
        {"Sid": "BatchSubmit", "Effect": "Allow", "Action": "batch:SubmitJob",
         "Resource": [ref("BatchJobQueue"), sub(f"{batch}:job-definition/genolake-${{Stage}}-bam-compress"),
                      sub(f"{batch}:job-definition/genolake-${{Stage}}-bam-compress:*")]},
        {"Sid": "BatchJobs", "Effect": "Allow", "Action": ["batch:TerminateJob", "batch:TagResource"],
         "Resource": sub(f"{batch}:job/*")},
        {"Sid": "BatchDescribeJobsRequiresStar", "Effect": "Allow", "Action": "batch:DescribeJobs", "Resource": "*"},
        {"Sid": "ReadJobLogs", "Effect": "Allow", "Action": "logs:GetLogEvents",
         "Resource": sub(BATCH_LOG_GROUP_ARN)},
        {"Sid": "FileCatalog", "Effect": "Allow",
         "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Scan"],
         "Resource": getatt("FileCatalogTable", "Arn")},
        {"Sid": "PseudonymKey", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
         # Secrets Manager appends '-' and 6 random characters to the name in the ARN
         "Resource": sub("arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
                         f"{PSEUDONYM_SECRET_NAME}-??????")},
        kms_via("UseLakeKey", KMS_READ_WRITE, "s3", "dynamodb", "secretsmanager"),
        # The Hail engine's transient clusters (EmrHailConverter): only clusters tagged as its own.
        {"Sid": "EmrRunJobFlowRequiresStar", "Effect": "Allow", "Action": "elasticmapreduce:RunJobFlow",
         "Resource": "*", "Condition": {"StringEquals": {f"aws:RequestTag/{EMR_COMPONENT_TAG}": EMR_COMPONENT}}},
        {"Sid": "EmrTagNewClusters", "Effect": "Allow", "Action": "elasticmapreduce:AddTags",
         "Resource": sub(EMR_CLUSTER_ARN),
         "Condition": {"StringEquals": {f"aws:RequestTag/{EMR_COMPONENT_TAG}": EMR_COMPONENT}}},
        # PutAutoTerminationPolicy: RunJobFlow's AutoTerminationPolicy may be checked as this action
        {"Sid": "EmrFollowAndStopClusters", "Effect": "Allow",
         "Action": ["elasticmapreduce:DescribeCluster", "elasticmapreduce:ListSteps", "elasticmapreduce:DescribeStep",
                    "elasticmapreduce:TerminateJobFlows", "elasticmapreduce:PutAutoTerminationPolicy"],
         "Resource": sub(EMR_CLUSTER_ARN),
         "Condition": {"StringEquals": {f"aws:ResourceTag/{EMR_COMPONENT_TAG}": EMR_COMPONENT}}},
        {"Sid": "PassEmrServiceRole", "Effect": "Allow", "Action": "iam:PassRole",
         "Resource": getatt("EmrServiceRole", "Arn"),
         "Condition": {"StringLike": {"iam:PassedToService": "elasticmapreduce.amazonaws.com*"}}},
        {"Sid": "PassEmrJobRole", "Effect": "Allow", "Action": "iam:PassRole", "Resource": getatt("EmrJobRole", "Arn"),
         "Condition": {"StringLike": {"iam:PassedToService": "ec2.amazonaws.com*"}}},
    ]
    datasync_statements = [
        {"Sid": "DataSyncTask", "Effect": "Allow", "Action": "datasync:StartTaskExecution",
         "Resource": getatt("SequencerTransferTask", "TaskArn")},
        {"Sid": "DataSyncExecutions", "Effect": "Allow", "Action": "datasync:DescribeTaskExecution",
         "Resource": sub("${SequencerTransferTask.TaskArn}/execution/*")},
        {"Sid": "DataSyncListTaskExecutionsRequiresStar", "Effect": "Allow",
         "Action": "datasync:ListTaskExecutions", "Resource": "*"},
    ]
    return {
        "OrchestratorPolicy": {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "Description": sub("genolake ${Stage}: what the Dagster code location (aws profile) needs; attach it "
                                   "to the role or user that runs Dagster"),
                "Roles": attach_to_orchestrator,
                "PolicyDocument": policy_document(*statements),
            },
        },
        "OrchestratorTransferPolicy": {
            # only with the DataSync task; separate so every policy document is a plain statement list
            "Condition": "CreateDataSync",
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "Description": sub("genolake ${Stage}: start and watch the sequencer DataSync task; attach it with "
                                   "the orchestrator policy"),
                "Roles": attach_to_orchestrator,
                "PolicyDocument": policy_document(*datasync_statements),
            },
        },
    }


# -- outputs ------------------------------------------------------------------------------------

def outputs() -> dict:
    def out(description, value, condition=None):
        o = {"Description": description, "Value": value}
        if condition:
            o["Condition"] = condition
        return o

    return {
        "LakeBucket": out("The lake bucket (GENOLAKE_S3_BUCKET)", ref("LakeBucket")),
        "LogBucket": out("S3 server access logs of the lake bucket", ref("LogBucket")),
        "KmsKeyArn": out("The lake's customer-managed KMS key (GENOLAKE_KMS_KEY_ID)", KEY_ARN),
        "GlueDatabase": out("Glue database (GENOLAKE_GLUE_DATABASE)", sub(GLUE_DATABASE_NAME)),
        "AthenaWorkgroup": out("Athena workgroup (GENOLAKE_ATHENA_WORKGROUP)", sub(ATHENA_WORKGROUP_NAME)),
        "AthenaOutput": out("Athena result location, enforced by the workgroup (GENOLAKE_ATHENA_OUTPUT)",
                            sub(f"s3://${{LakeBucket}}/{ATHENA_RESULTS_PREFIX}")),
        "BatchJobQueue": out("Batch job queue of bam-compress (GENOLAKE_BATCH_JOB_QUEUE)", ref("BatchJobQueue")),
        "BatchJobDefinition": out("Batch job definition revision of bam-compress (GENOLAKE_BATCH_JOB_DEFINITION)",
                                  ref("BatchJobDefinition")),
        "FileCatalogTable": out("DynamoDB file catalog (GENOLAKE_FILE_CATALOG_TABLE)", ref("FileCatalogTable")),
        "DataSyncTaskArn": out("DataSync task: the transfer config's task_arn (GENOLAKE_TRANSFER_CONFIG)",
                               getatt("SequencerTransferTask", "TaskArn"), "CreateDataSync"),
        "EcrRepositoryUri": out("ECR repository of the bam-compress image",
                                getatt("BamCompressRepository", "RepositoryUri")),
        "OrchestratorPolicyArn": out("Managed policy for the role that runs Dagster", ref("OrchestratorPolicy")),
        "OrchestratorTransferPolicyArn": out("Managed policy for the role that runs Dagster: the DataSync task",
                                             ref("OrchestratorTransferPolicy"), "CreateDataSync"),
        "PseudonymKeyParameter": out("Secrets Manager secret holding the pseudonymisation key "
                                     "(GENOLAKE_PSEUDONYM_KEY_PARAMETER)", ref("PseudonymKey")),
        "EmrServiceRoleArn": out("EMR service role (GENOLAKE_EMR_SERVICE_ROLE)", getatt("EmrServiceRole", "Arn")),
        "EmrInstanceProfileArn": out("EMR instance profile, the EMR job role (GENOLAKE_EMR_INSTANCE_PROFILE)",
                                     getatt("EmrInstanceProfile", "Arn")),
        "EmrSecurityConfiguration": out("EMR security configuration (GENOLAKE_EMR_SECURITY_CONFIGURATION)",
                                        ref("EmrSecurityConfiguration")),
        "EmrLogUri": out("LogUri for EMR clusters", sub(f"s3://${{LakeBucket}}/{EMR_LOGS_PREFIX}")),
        "EmrSubnetId": out("Subnet of the Hail EMR clusters: the first Batch subnet (GENOLAKE_EMR_SUBNET_ID); tag "
                           "it for-use-with-amazon-emr-managed-policies=true",
                           {"Fn::Select": [0, ref("BatchSubnetIds")]}),
    }


# -- the template -------------------------------------------------------------------------------

def build_template(stage: str = "dev") -> dict:
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
    resources: dict = {}
    for part in (kms_resources, bucket_resources, catalog_resources, emr_resources, batch_resources,
                 datasync_resources, orchestrator_policy):
        resources.update(part())
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "genolake: the aws profile's lake (S3, KMS), catalog (Glue, Athena, DynamoDB), EMR roles, "
                       "Batch bam-compress, DataSync and least-privilege IAM. Rendered by deploy/template.py; "
                       "do not edit by hand.",
        "Metadata": {
            "AWS::CloudFormation::Interface": {"ParameterGroups": [
                {"Label": {"default": "Stage"}, "Parameters": ["Stage"]},
                {"Label": {"default": "Batch (bam-compress)"},
                 "Parameters": ["BatchSubnetIds", "BatchSecurityGroupIds", "BatchAssignPublicIp", "BatchComputeType",
                                "BatchMaxVcpus", "BamCompressImageTag", "BatchServiceRoleArn"]},
                {"Label": {"default": "Sequencer transfers (optional)"},
                 "Parameters": ["SequencerShareHost", "SequencerSharePath", "DataSyncAgentArn"]},
                {"Label": {"default": "Queries, EMR, logs"},
                 "Parameters": ["AthenaBytesScannedCutoff", "EmrTlsCertificatesKey", "AccessLogRetentionDays"]},
                {"Label": {"default": "Orchestrator"}, "Parameters": ["OrchestratorRoleName"]},
            ]},
        },
        "Parameters": parameters(stage),
        "Conditions": conditions(),
        "Resources": resources,
        "Outputs": outputs(),
    }


def render(stage: str = "dev") -> str:
    return json.dumps(build_template(stage), indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the genolake CloudFormation template.")
    parser.add_argument("--stage", default="dev", choices=STAGES, help="default of the Stage parameter")
    parser.add_argument("--out", type=Path, default=TEMPLATE_PATH, help="where to write it ('-' = stdout)")
    args = parser.parse_args(argv)
    text = render(args.stage)
    if str(args.out) == "-":
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
