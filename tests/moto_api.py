"""Driving a moto server's own API from tests: seeding Athena results (moto runs no SQL)."""

from __future__ import annotations

import json
import urllib.request


def moto_api(endpoint: str, path: str, payload: dict) -> None:
    request = urllib.request.Request(f"{endpoint}/moto-api/{path}", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request) as response:
        assert response.status in (200, 201)


def seed_result(endpoint: str, columns: list[tuple[str, str, int, int]], rows: list[list[str | None]]) -> None:
    """Queue one result: columns are (name, Athena type, precision, scale); None is SQL NULL."""
    column_info = [{"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": name, "Label": name,
                    "Type": athena_type, "Precision": precision, "Scale": scale, "Nullable": "UNKNOWN",
                    "CaseSensitive": athena_type == "varchar"} for name, athena_type, precision, scale in columns]
    # Athena's first result row of a SELECT is the header.
    header = {"Data": [{"VarCharValue": name} for name, *_ in columns]}
    data = [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in rows]
    result = {"rows": [header, *data], "column_info": column_info}
    moto_api(endpoint, "static/athena/query-results", {"results": [result]})


def create_batch_queue(endpoint: str) -> dict[str, str]:
    """Batch on moto without Docker (jobs "succeed" at once): a service role, an unmanaged compute
    environment (a managed one needs security groups), a job queue and a container job definition."""
    import uuid

    from genolake_assets.resources.lake.s3_store import aws_client

    moto_api(endpoint, "config", {"batch": {"use_docker": False}})
    iam = aws_client("iam", endpoint_url=endpoint, region_name="us-east-1")
    batch = aws_client("batch", endpoint_url=endpoint, region_name="us-east-1")
    suffix = uuid.uuid4().hex[:8]
    role = iam.create_role(RoleName=f"genolake-batch-{suffix}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    environment = batch.create_compute_environment(computeEnvironmentName=f"genolake-ce-{suffix}", type="UNMANAGED",
                                                   state="ENABLED", serviceRole=role)["computeEnvironmentArn"]
    queue = f"genolake-q-{suffix}"
    batch.create_job_queue(jobQueueName=queue, state="ENABLED", priority=1,
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}])
    definition = f"genolake-bam-compress-{suffix}"
    batch.register_job_definition(jobDefinitionName=definition, type="container", containerProperties={
        "image": "genolake/bam-compress:latest", "vcpus": 1, "memory": 2048, "command": []})
    return {"queue": queue, "definition": definition, "environment": environment}
