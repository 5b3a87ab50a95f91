"""The aws profile's file catalog: a DynamoDB table whose conditional writes make retries safe."""

from typing import Any

from botocore.exceptions import ClientError
from pydantic import PrivateAttr

from genolake_assets.resources.file_catalog.file_catalog import FileCatalog, FileCatalogConflict, FileCatalogEntry
from genolake_assets.resources.lake.s3_store import aws_client


def _is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoDbFileCatalog(FileCatalog):
    """A DynamoDB table with partition key ``file_uri``; conditional writes make retries safe."""

    table_name: str
    region: str | None = None
    endpoint_url: str | None = None

    _client: Any = PrivateAttr(default=None)

    def _dynamodb(self):
        if self._client is None:
            self._client = aws_client("dynamodb", endpoint_url=self.endpoint_url, region_name=self.region)
        return self._client

    def _stored_sha256(self, error: ClientError, file_uri: str) -> str | None:
        """The sha256 of the item that failed the condition: from ALL_OLD, else a consistent read."""
        old = error.response.get("Item")
        if old is not None:
            return old.get("sha256", {}).get("S")
        stored = self.get(file_uri)
        return stored.sha256 if stored else None

    def put(self, entry: FileCatalogEntry) -> bool:
        try:
            # One call decides: no read-then-write race between two runs cataloguing the same URI.
            self._dynamodb().put_item(
                TableName=self.table_name, Item=entry.to_item(),
                ConditionExpression="attribute_not_exists(file_uri)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return True
        except ClientError as error:
            if not _is_condition_failure(error):
                raise
            existing = self._stored_sha256(error, entry.file_uri)
        if existing != entry.sha256:
            raise FileCatalogConflict(entry.file_uri, str(existing), entry.sha256)
        return False

    def get(self, file_uri: str) -> FileCatalogEntry | None:
        response = self._dynamodb().get_item(
            TableName=self.table_name, Key={"file_uri": {"S": file_uri}}, ConsistentRead=True)
        item = response.get("Item")
        return FileCatalogEntry.from_item(item) if item else None

    def entries(self, file_type: str | None = None) -> list[FileCatalogEntry]:
        # A full Scan is fine for thousands of files; at scale the next step is a GSI on file_type
        # (queried instead of scanned).
        arguments: dict[str, Any] = {"TableName": self.table_name, "ConsistentRead": True}
        if file_type is not None:
            arguments.update(FilterExpression="file_type = :file_type",
                             ExpressionAttributeValues={":file_type": {"S": file_type}})
        pages = self._dynamodb().get_paginator("scan").paginate(**arguments)
        found = [FileCatalogEntry.from_item(item) for page in pages for item in page.get("Items", [])]
        return sorted(found, key=lambda entry: entry.file_uri)

    def set_status(self, file_uri: str, status: str, expected_sha256: str) -> None:
        try:
            self._dynamodb().update_item(
                TableName=self.table_name, Key={"file_uri": {"S": file_uri}},
                UpdateExpression="SET #status = :status",
                # The condition also fails for a missing item, so set_status never creates one.
                ConditionExpression="sha256 = :expected",
                ExpressionAttributeNames={"#status": "status"},  # a DynamoDB reserved word
                ExpressionAttributeValues={":status": {"S": status}, ":expected": {"S": expected_sha256}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if not _is_condition_failure(error):
                raise
            existing = self._stored_sha256(error, file_uri)
            if existing is None:
                raise KeyError(file_uri) from None
            raise FileCatalogConflict(file_uri, existing, expected_sha256) from None

    def create_table_if_missing(self) -> None:
        """For local development and tests only: production tables come from infrastructure as code."""
        client = self._dynamodb()
        try:
            client.create_table(
                TableName=self.table_name,
                AttributeDefinitions=[{"AttributeName": "file_uri", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "file_uri", "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
                SSESpecification={"Enabled": True},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
        client.get_waiter("table_exists").wait(TableName=self.table_name, WaiterConfig={"Delay": 1})

    def describe(self) -> str:
        return f"dynamodb://{self.table_name}"
