"""JSON records the ingest keeps per sample: where it landed, and what became of it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class LandingEntry:
    """Written by the landing sensor: which landed file and header column a sample comes from."""

    sample_id: str
    sample_name: str
    source_key: str
    source_uri: str
    source_etag: str
    source_size: int
    samples_in_file: int
    landed_at: str = field(default_factory=utc_now)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> LandingEntry:
        return cls(**json.loads(data))


@dataclass
class SampleRecord:
    """One row of the samples table: traces every report row back to its file."""

    sample_id: str
    sample_name: str
    source_uri: str
    source_key: str
    raw_key: str | None = None
    raw_uri: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    file_format: str | None = None
    reference_genome: str | None = None
    caller: str | None = None
    samples_in_file: int | None = None
    registered_at: str | None = None
    status: str = "landed"  # landed | registered | converted | quarantined
    reason: str | None = None
    engine: str | None = None
    engine_version: str | None = None
    converted_at: str | None = None
    conversion_seconds: float | None = None
    records_read: int | None = None
    variant_rows: int | None = None
    reference_block_rows: int | None = None
    variant_bytes: int | None = None
    reference_block_bytes: int | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> SampleRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(data).items() if k in known})
