"""Reading and writing the per-sample JSON records through the object store."""


from genolake_assets.lib.lake.layout import landing_index_key, published_record_key, sample_registry_key
from genolake_assets.lib.lake.registry import LandingEntry, SampleRecord


def load_landing(store, sample_id: str) -> LandingEntry:
    key = landing_index_key(sample_id)
    if not store.exists(key):
        raise FileNotFoundError(f"no landed file is known for sample {sample_id!r} ({store.uri(key)}); "
                                "land it under landing/ and let the landing sensor register it")
    return LandingEntry.from_json(store.read_bytes(key))


def load_record(store, sample_id: str) -> SampleRecord | None:
    key = sample_registry_key(sample_id)
    return SampleRecord.from_json(store.read_bytes(key)) if store.exists(key) else None


def save_record(store, record: SampleRecord) -> None:
    store.write_bytes(sample_registry_key(record.sample_id), record.to_json())


def save_published(store, record: SampleRecord) -> None:
    """Snapshot of the version the lake serves, so a later rejected upload cannot hide it."""
    store.write_bytes(published_record_key(record.sample_id), record.to_json())


def mark_quarantined(store, record: SampleRecord, reason: str) -> SampleRecord:
    """Record a rejected upload; if an earlier version is still served, keep describing that one."""
    key = published_record_key(record.sample_id)
    if store.exists(key):
        served = SampleRecord.from_json(store.read_bytes(key))
        served.status = "quarantined"
        served.reason = (f"{reason} -- rejected upload {record.source_uri} (sha256 {record.sha256 or 'n/a'}); "
                         f"still serving {served.raw_uri} converted at {served.converted_at}")
        record = served
    else:
        record.status, record.reason = "quarantined", reason
    save_record(store, record)
    return record
