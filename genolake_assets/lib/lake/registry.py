"""JSON records the ingest keeps per sample: where it landed, and what became of it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime

import pyarrow as pa


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


SAMPLE_COLUMNS = {
    "sample_id": "Safe id of the sample: the partition key of the per-sample tables",
    "sample_name": "The sample's name in the VCF header",
    "source_uri": "Where the VCF was landed",
    "source_key": "Lake key of the landed VCF",
    "raw_key": "Lake key of the registered, content-addressed copy",
    "raw_uri": "URI of the registered copy the tables were converted from",
    "sha256": "SHA-256 of the registered VCF",
    "size_bytes": "Size of the VCF in bytes",
    "file_format": "VCF version (##fileformat)",
    "reference_genome": "Reference assembly, from the header (##reference, ##contig) or the file name",
    "caller": "Variant caller, from ##source or ##GATKCommandLine",
    "samples_in_file": "Samples in the VCF the sample came from",
    "registered_at": "When raw_vcf registered the file (UTC)",
    "status": "landed, registered, converted or quarantined",
    "reason": "Why the latest upload was quarantined",
    "engine": "Conversion engine",
    "engine_version": "Conversion engine version",
    "converted_at": "When the sample's tables were published (UTC)",
    "conversion_seconds": "Seconds to convert the whole VCF the sample came from",
    "records_read": "VCF records read",
    "variant_rows": "Rows in the sample's variants partition",
    "reference_block_rows": "Rows in the sample's reference_blocks partition",
    "variant_bytes": "Parquet bytes of the variants partition",
    "reference_block_bytes": "Parquet bytes of the reference_blocks partition",
}
"""The UI's one line per column (Dagster column schema)."""


# One row per SampleRecord (above), in its field order.
SAMPLES_SCHEMA = pa.schema([
    ("sample_id", pa.string()), ("sample_name", pa.string()), ("source_uri", pa.string()),
    ("source_key", pa.string()), ("raw_key", pa.string()), ("raw_uri", pa.string()), ("sha256", pa.string()),
    ("size_bytes", pa.int64()), ("file_format", pa.string()), ("reference_genome", pa.string()),
    ("caller", pa.string()), ("samples_in_file", pa.int32()), ("registered_at", pa.string()),
    ("status", pa.string()), ("reason", pa.string()), ("engine", pa.string()), ("engine_version", pa.string()),
    ("converted_at", pa.string()), ("conversion_seconds", pa.float64()), ("records_read", pa.int64()),
    ("variant_rows", pa.int64()), ("reference_block_rows", pa.int64()), ("variant_bytes", pa.int64()),
    ("reference_block_bytes", pa.int64()),
])


def samples_arrow_table(records: list[SampleRecord]) -> pa.Table:
    rows = [vars(r) for r in sorted(records, key=lambda r: r.sample_id)]
    return pa.Table.from_pylist(rows, schema=SAMPLES_SCHEMA)
