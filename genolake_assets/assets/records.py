"""Reading and writing the per-sample JSON records through the object store."""


from genolake_assets.lib.lake_layout import landing_index_key, sample_registry_key
from genolake_assets.lib.registry import LandingEntry, SampleRecord


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
