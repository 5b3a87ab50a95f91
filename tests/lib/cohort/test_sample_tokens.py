"""Which samples a lake holds and their version tokens (lib/cohort/sample_tokens.py), on real conversions."""

from __future__ import annotations

import time

import pyarrow as pa
import pyarrow.parquet as pq

from genolake_assets.lib.cohort.sample_tokens import lake_sample_tokens, per_sample_tables, samples_table_tokens
from genolake_assets.lib.lake.layout import SAMPLES_TABLE_KEY
from genolake_assets.lib.vcf.convert import convert_vcf
from genolake_assets.resources.lake.local_store import LocalObjectStore


def test_per_sample_tables_are_the_part_files_of_sample_folders():
    keys = ["variants/sample_id=A/part-00000.parquet", "reference_blocks/sample_id=A/part-00000.parquet",
            "reference_blocks/sample_id=B/part-00000.parquet",
            "variants/sample_id=C/part-00001.parquet",  # not the part name a writer publishes
            "variants/sample_id=C/.tmp-123-part-00000.parquet",
            "variants/sample_id=../part-00000.parquet",  # not a safe sample id
            "variants/part-00000.parquet", "cohort/contig=chr22/bin=10/gen=1/delta-0123456789ab.parquet",
            "samples/part-00000.parquet"]

    assert per_sample_tables(keys) == {
        "A": {"variants": keys[0], "reference_blocks": keys[1]},
        "B": {"reference_blocks": keys[2]},
    }


def test_a_converted_lake_gets_file_tokens_that_move_only_with_a_reconversion(tmp_path, data_vcf):
    lake = tmp_path / "lake"
    for name in ("HG00187", "HG01377"):
        convert_vcf(data_vcf / f"{name}.hg38.g.vcf.gz", lake)
    store = LocalObjectStore(lake)

    first = lake_sample_tokens(store, store.local_path)
    assert sorted(first) == ["HG00187", "HG01377"]
    assert all(token.startswith("files|variants=") for token in first.values())
    assert lake_sample_tokens(store, store.local_path) == first  # nothing changed, nothing moves

    time.sleep(0.01)  # the files' modification times must differ
    convert_vcf(data_vcf / "HG01377.hg38.g.vcf.gz", lake)
    second = lake_sample_tokens(store, store.local_path)

    assert second["HG00187"] == first["HG00187"] and second["HG01377"] != first["HG01377"]


def test_the_samples_table_token_wins_where_it_lists_the_sample(tmp_path, data_vcf):
    lake = tmp_path / "lake"
    for name in ("HG00187", "HG01377"):
        convert_vcf(data_vcf / f"{name}.hg38.g.vcf.gz", lake)
    (lake / "samples").mkdir()
    # The asset's token (converted_at|sha256|engine_version); a sample never converted has no token.
    pq.write_table(pa.table({"sample_id": ["HG00187", "NA12249"], "converted_at": ["2026-12-01T10:00:00Z", None],
                             "sha256": ["ab" * 32, None], "engine_version": ["3", None]}), lake / SAMPLES_TABLE_KEY)
    store = LocalObjectStore(lake)

    assert samples_table_tokens(store, store.local_path) == {"HG00187": f"2026-12-01T10:00:00Z|{'ab' * 32}|3"}
    tokens = lake_sample_tokens(store, store.local_path)

    assert tokens["HG00187"] == f"2026-12-01T10:00:00Z|{'ab' * 32}|3"
    assert tokens["HG01377"].startswith("files|")
    assert "NA12249" not in tokens  # listed, but no tables in the lake: nothing to fold in
