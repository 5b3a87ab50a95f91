"""Any legal contig name gets a cohort partition folder (issue 21 item 4): ``chrUn/evil`` is converted,
folded into the cohort twice and looked up again; its folder is an injective, path-safe encoding."""

from __future__ import annotations

import dagster as dg
import pyarrow.fs as pafs

from genolake_assets.assets.variants import cohort_variants
from genolake_assets.lib.cohort.lookup import Marker, lookup, parse_marker
from genolake_assets.lib.cohort.state import STATE_KEY, CohortState
from tests.pipeline.helpers import ingest, refresh_tables, tick

VCF = """##fileformat=VCFv4.2
##contig=<ID=chrUn/evil,length=100000>
##contig=<ID=chr1,length=100000>
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{sample}
chrUn/evil\t100\t.\tA\tG\t50\tPASS\t.\tGT\t0/1
chrUn/evil\t200\t.\tC\tT\t50\tPASS\t.\tGT\t1/1
chr1\t300\t.\tG\tA\t50\tPASS\t.\tGT\t0/1
"""


def _land_and_ingest(instance, resources, land, tmp_path, sample: str) -> None:
    path = tmp_path / f"{sample}.vcf"
    path.write_text(VCF.format(sample=sample))
    land(path)
    requests = [r for r in tick(instance, resources).run_requests if r.partition_key == sample]
    assert requests, "the landing sensor did not request the sample"
    assert ingest(instance, resources, sample).success
    assert refresh_tables(instance, resources).success


def _refresh_cohort(instance, resources) -> None:
    result = dg.materialize([cohort_variants], instance=instance, resources=resources)
    assert result.success


def test_a_contig_with_a_slash_is_folded_in_twice_and_looked_up(instance, resources, land, store, tmp_path):
    _land_and_ingest(instance, resources, land, tmp_path, "EVIL1")
    _refresh_cohort(instance, resources)
    _land_and_ingest(instance, resources, land, tmp_path, "EVIL2")
    _refresh_cohort(instance, resources)
    _refresh_cohort(instance, resources)  # nothing new: still fine

    state = CohortState.from_json(store.read_bytes(STATE_KEY))
    assert set(state.samples) == {"EVIL1", "EVIL2"}
    partition = state.partitions["chrUn/evil/0"]
    assert partition.contig == "chrUn/evil" and len(partition.files) == 2
    keys = state.live_keys(partition)
    assert all(key.startswith("cohort/contig=chrUn_evil-") and "/bin=0/gen=1/" in key for key in keys)
    assert all(store.exists(key) for key in keys)

    result = lookup([Marker("chrUn/evil", 200), parse_marker("chrUn/evil:100:A:G")], state,
                    pafs.LocalFileSystem(), str(store.root))
    rows = {(r["marker"], r["sample_id"]): r for r in result.table.to_pylist()}
    assert rows[("chrUn/evil:200", "EVIL1")]["status"] == "variant"
    assert rows[("chrUn/evil:200", "EVIL1")]["contig"] == "chrUn/evil"
    assert rows[("chrUn/evil:100:A:G", "EVIL2")]["genotype"] == "0/1"
