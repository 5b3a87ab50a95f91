"""The VCF -> Parquet converter checked against docs/variant-table.md, with pysam as the oracle.

Expectations come from pysam (htslib) plus an independent implementation of the written spec in
``tests/lib/vcf/oracle.py``, and from values read by eye from the real files (``zcat``), hard-coded
below. Nothing here reuses the converter's code to compute an expected value.

Test data: ``tests/data/vcf`` (see ``tests/data/PROVENANCE.md``).
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pysam
import pytest

from genolake_assets.lib.errors import VcfFormatError
from genolake_assets.lib.lake.identifiers import is_safe_sample_id, sample_id_for

HERE = Path(__file__).resolve().parent
DATA_VCF = HERE.parents[1] / "data" / "vcf"


def _load_oracle():
    # loaded by path (not "import conftest"/"import oracle") so it works whatever the import mode
    import importlib.util
    import sys
    name = "genolake_tests_oracle"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "oracle.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


O = _load_oracle()

GVCF_SAMPLES = ["HG00187", "HG00190", "NA12249", "HG01377", "NA20317"]
GVCFS = {s: DATA_VCF / f"{s}.hg38.g.vcf.gz" for s in GVCF_SAMPLES}
COHORT = DATA_VCF / "1kg_chr20_100samples_GRCh37.vcf"
BAD = DATA_VCF / "bad"
ALL_GOOD = [*GVCFS.values(), COHORT]
TABLES = ("variants", "reference_blocks")


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def part_file(out: Path, table: str, sample_id: str) -> Path:
    return Path(out) / table / f"sample_id={sample_id}" / "part-00000.parquet"


def read_part(out: Path, table: str, sample_id: str) -> pa.Table | None:
    f = part_file(out, table, sample_id)
    return pq.read_table(f) if f.exists() else None


def rows_of(out: Path, table: str, sample_id: str) -> list[dict]:
    t = read_part(out, table, sample_id)
    return [] if t is None else t.to_pylist()


def require_part(out: Path, table: str, sample_id: str) -> pa.Table:
    f = part_file(out, table, sample_id)
    assert f.exists(), f"missing {f.relative_to(out)}; written: {sorted(written_files(out))}"
    return pq.read_table(f)


def written_files(out: Path) -> list[str]:
    out = Path(out)
    if not out.exists():
        return []
    return [str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()]


def find_rows(rows: list[dict], **match) -> list[dict]:
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def one_row(rows: list[dict], **match) -> dict:
    found = find_rows(rows, **match)
    assert len(found) == 1, f"expected one row matching {match}, found {len(found)}"
    return found[0]


def approx_equal(expected, actual) -> bool:
    return O.values_equal(expected, actual)


def check_values(row: dict, expected: dict, label: str) -> None:
    problems = []
    for col, ev in expected.items():
        if col not in row:
            problems.append(f"{col}: column missing")
        elif not approx_equal(ev, row[col]):
            problems.append(f"{col}: expected {ev!r}, got {row[col]!r}")
    assert not problems, f"{label}:\n  " + "\n  ".join(problems)


def pysam_counts(path: Path) -> tuple[int, int, int]:
    """(records, records whose ALTs are only <NON_REF>, sum of ALTs not in {<NON_REF>, *})."""
    total = ref_only = variant_rows = 0
    with pysam.VariantFile(str(path)) as vf:
        for rec in vf:
            total += 1
            alts = list(rec.alts or ())
            if alts and all(a == "<NON_REF>" for a in alts):
                ref_only += 1
            else:
                variant_rows += sum(1 for a in alts if a not in ("<NON_REF>", "*"))
    return total, ref_only, variant_rows


def assert_rows_match_oracle(out: Path, exp, label: str) -> None:
    problems = []
    for name, es in exp.samples.items():
        for table, expected_rows in (("variants", es.variants), ("reference_blocks", es.reference_blocks)):
            actual = rows_of(out, table, es.sample_id)
            if not expected_rows and not part_file(out, table, es.sample_id).exists():
                continue
            problems += O.diff_rows(expected_rows, actual, f"{label} {name} {table}")
    assert not problems, "\n".join(problems[:60])


# ---------------------------------------------------------------------------------------------
# the oracle's own checks (run without the converter)
# ---------------------------------------------------------------------------------------------

class TestOracleItself:
    def test_min_rep(self):
        assert O.min_rep(100, "A", "G") == (100, "A", "G")
        assert O.min_rep(100, "TA", "T") == (100, "TA", "T")
        # common suffix then prefix; the prefix trim moves pos
        assert O.min_rep(100, "ATT", "AT") == (100, "AT", "A")
        assert O.min_rep(100, "CAG", "CTG") == (101, "A", "T")
        assert O.min_rep(100, "TAA", "TA") == (100, "TA", "T")
        assert O.min_rep(100, "GCACA", "GCA") == (100, "GCA", "G")

    def test_pl_index_order(self):
        # VCF order for 3 alleles: 0/0 0/1 1/1 0/2 1/2 2/2 0/3 1/3 2/3 3/3
        got = [O.diploid_genotype(j) for j in range(10)]
        assert got == [(0, 0), (0, 1), (1, 1), (0, 2), (1, 2), (2, 2), (0, 3), (1, 3), (2, 3), (3, 3)]

    def test_split_by_hand(self):
        # HG00187 chr22:10685603 T C,G,<NON_REF> 0/2 AD 4,2,3,0 PL 69,53,164,0,88,108,81,169,117,198
        pl = [69, 53, 164, 0, 88, 108, 81, 169, 117, 198]
        assert O.split_pl(pl, 1, (0, 2), 4) == [0, 53, 164]
        assert O.split_pl(pl, 2, (0, 2), 4) == [53, 0, 108]
        assert O.split_pl(pl, 2, None, 4) is None  # Hail: no call, no split PL
        assert O.split_pl([30, 0, 50, 70], 2, (2,), 4) == [0, 50]  # haploid: min(PL[j != i]), PL[i]
        assert O.split_ad([4, 2, 3, 0], 1, 4) == [7, 2]
        assert O.split_ad([4, 2, 3, 0], 2, 4) == [6, 3]
        assert O.split_ad([4, None, 3, 0], 2, 4) == [4, 3]  # Hail's sum skips a missing depth
        assert O.split_ad([4, None, 3, 0], 1, 4) == [None, None]
        assert O.downcode_alleles((0, 2), 1, False) == [0, 0]
        assert O.downcode_alleles((0, 2), 2, False) == [0, 1]
        assert O.downcode_alleles((2, 1), 2, False) == [0, 1]  # unphased: ascending, as Hail stores it
        assert O.downcode_alleles((2, 1), 2, True) == [1, 0]
        assert O.call_text("0|1", 1) == "0|1"
        assert O.call_text("1|2", 2) == "0|1"
        assert O.call_text("2/1", 2) == "0/1"
        assert O.call_text("0|.") is None

    def test_gq_from_pl_is_capped_at_99(self):
        assert O.gq_from_pl([0, 53, 164]) == 53
        assert O.gq_from_pl([0, 120, 1800]) == 99
        assert O.gq_from_pl([43, 2, 0]) == 2
        assert O.gq_from_pl([150, 200, 300]) == 0  # both minima start at 99

    @pytest.mark.parametrize("sample", GVCF_SAMPLES)
    def test_oracle_counts_agree_with_raw_text(self, sample):
        """The oracle's classification, re-derived from the raw text with no VCF library."""
        ref_only = kept = total = 0
        with gzip.open(GVCFS[sample], "rt") as fh:
            for line in fh:
                if line.startswith("#"):
                    continue
                total += 1
                alts = line.split("\t")[4].split(",")
                if alts == ["<NON_REF>"]:
                    ref_only += 1
                else:
                    kept += sum(a not in ("<NON_REF>", "*") for a in alts)
        exp = O.expected_for(str(GVCFS[sample]), sample_id_for)
        es = exp.samples[sample]
        assert (exp.records_read, len(es.reference_blocks), len(es.variants)) == (total, ref_only, kept)
        assert pysam_counts(GVCFS[sample]) == (total, ref_only, kept)


# ---------------------------------------------------------------------------------------------
# gVCFs: counts, rows, schema
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sample", GVCF_SAMPLES)
def test_gvcf_counts(sample, converted):
    path = GVCFS[sample]
    out, report = converted(path)
    total, ref_only, variant_rows = pysam_counts(path)

    assert report.records_read == total
    if shutil.which("bcftools"):
        body = subprocess.run(["bcftools", "view", "-H", str(path)], check=True,
                              capture_output=True).stdout
        assert report.records_read == body.count(b"\n")

    assert set(report.samples) == {sample}
    rs = report.samples[sample]
    assert rs.sample_id == sample_id_for(sample) == sample
    assert rs.reference_block_rows == ref_only
    assert rs.variant_rows == variant_rows
    assert rs.reference_block_records == ref_only
    assert rs.variant_records == total - ref_only - rs.spanning_deletion_records
    assert rs.spanning_deletion_records == 0  # none of these files has a *-only record
    assert report.records_read == rs.variant_records + rs.reference_block_records + rs.spanning_deletion_records

    # the files hold what the report says
    assert require_part(out, "variants", sample).num_rows == variant_rows
    assert require_part(out, "reference_blocks", sample).num_rows == ref_only
    assert sorted(written_files(out)) == sorted([
        f"variants/sample_id={sample}/part-00000.parquet",
        f"reference_blocks/sample_id={sample}/part-00000.parquet",
    ])


@pytest.mark.parametrize("sample", GVCF_SAMPLES)
def test_gvcf_rows_match_oracle(sample, converted, expected):
    out, _ = converted(GVCFS[sample])
    assert_rows_match_oracle(out, expected(GVCFS[sample]), sample)


def _is_string(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _type_matches(t: pa.DataType, value_type: str, is_list: bool) -> bool:
    if is_list:
        if not (pa.types.is_list(t) or pa.types.is_large_list(t)):
            return False
        t = t.value_type
    if value_type == "string":
        return _is_string(t)
    return t == {"int16": pa.int16(), "int32": pa.int32(), "float64": pa.float64(), "bool": pa.bool_()}[value_type]


CORE_TYPES = {
    "sample_id": ("string", False), "sample_name": ("string", False), "contig": ("string", False),
    "pos": ("int32", False), "end": ("int32", False), "ref": ("string", False), "alt": ("string", False),
    "variant_id": ("string", False), "rsid": ("string", False), "qual": ("float64", False),
    "filters": ("string", True), "alleles": ("string", True), "allele_index": ("int16", False),
    "was_split": ("bool", False), "gt": ("int16", True), "gt_phased": ("bool", False),
}
UNSPLIT_TYPES = {
    "gt_unsplit": ("int16", True), "fmt_ad_unsplit": ("int32", True), "fmt_pl_unsplit": ("int32", True),
    "fmt_gq_unsplit": ("int32", False), "fmt_pgt_unsplit": ("string", False),
}


@pytest.mark.parametrize("path", ALL_GOOD, ids=lambda p: p.name.split(".")[0])
def test_schema_follows_header(path, converted, expected):
    out, _ = converted(path)
    exp = expected(path)
    es = next(iter(exp.samples.values()))
    problems = []
    for table in TABLES:
        t = require_part(out, table, es.sample_id)
        schema = t.schema
        names = schema.names
        core = [c for c in O.CORE_COLUMNS if c in names]
        required = [c for c in O.CORE_COLUMNS if table == "variants" or c not in O.VARIANT_ONLY_CORE_COLUMNS]
        for c in required:
            if c not in names:
                problems.append(f"{table}: core column {c} missing")
        # core columns in spec order, before the info_/fmt_ columns
        positions = [names.index(c) for c in core]
        if positions != sorted(positions):
            problems.append(f"{table}: core columns out of order: {core} at {positions}")
        first_field = min((names.index(n) for n in names if n.startswith(("info_", "fmt_"))), default=None)
        if first_field is not None and positions and max(positions) > first_field:
            problems.append(f"{table}: core columns must come before info_/fmt_ columns")
        for c in core:
            vt, is_list = CORE_TYPES[c]
            if not _type_matches(schema.field(c).type, vt, is_list):
                problems.append(f"{table}: {c} is {schema.field(c).type}, expected {'list<' + vt + '>' if is_list else vt}")
        for spec in exp.infos + exp.fmts:
            if spec.column not in names:
                problems.append(f"{table}: {spec.kind}/{spec.key} -> {spec.column} missing")
                continue
            got = schema.field(spec.column).type
            if not _type_matches(got, spec.arrow_value_type, spec.is_list):
                want = f"list<{spec.arrow_value_type}>" if spec.is_list else spec.arrow_value_type
                problems.append(f"{table}: {spec.column} (Number={spec.number}, Type={spec.vcf_type}) "
                                f"is {got}, expected {want}")
        if table == "variants":
            fmt_keys = {f.key for f in exp.fmts}
            for c, (vt, is_list) in UNSPLIT_TYPES.items():
                key = c[len("fmt_"):-len("_unsplit")].upper() if c.startswith("fmt_") else "GT"
                if key != "GT" and key not in fmt_keys:
                    continue
                if c not in names:
                    problems.append(f"variants: {c} missing")
                elif not _type_matches(schema.field(c).type, vt, is_list):
                    problems.append(f"variants: {c} is {schema.field(c).type}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", ALL_GOOD, ids=lambda p: p.name.split(".")[0])
def test_no_columns_beyond_the_spec(path, converted, expected):
    """Every column is a core column, info_/fmt_<key> of a header key, an *_unsplit column, or
    `undeclared_info` (INFO keys the header lacks, kept verbatim)."""
    out, _ = converted(path)
    exp = expected(path)
    es = next(iter(exp.samples.values()))
    allowed = set(O.CORE_COLUMNS) | {s.column for s in exp.infos + exp.fmts} | set(UNSPLIT_TYPES)
    allowed.add("undeclared_info")
    extra = {table: [n for n in require_part(out, table, es.sample_id).schema.names if n not in allowed]
             for table in TABLES}
    assert extra == {t: [] for t in TABLES}


@pytest.mark.parametrize("path", ALL_GOOD, ids=lambda p: p.name.split(".")[0])
def test_sorted_by_contig_in_header_order_then_pos(path, converted, expected):
    out, _ = converted(path)
    exp = expected(path)
    order = {c: i for i, c in enumerate(exp.contigs)}
    for es in exp.samples.values():
        for table in TABLES:
            t = read_part(out, table, es.sample_id)
            if t is None:
                continue
            keys = list(zip((order[c] for c in t.column("contig").to_pylist()), t.column("pos").to_pylist()))
            bad = [i for i in range(1, len(keys)) if keys[i] < keys[i - 1]]
            assert not bad, f"{es.sample_name} {table} not sorted at row {bad[0]}: {keys[bad[0] - 1]} > {keys[bad[0]]}"


# ---------------------------------------------------------------------------------------------
# spot checks of real records (values read with zcat, hard-coded)
# ---------------------------------------------------------------------------------------------

def test_hg00187_first_variant_record(converted):
    # chr22 10678964 . A G,<NON_REF> 26.60 . AS_RAW_BaseQRankSum=|0.9,1|NaN;AS_RAW_MQ=15853.00|2285.00|0.00;
    #   ...;AS_SB_TABLE=6,8|2,1|0,0;BaseQRankSum=0.952;DP=17;ExcessHet=3.0103;MLEAC=1,0;MLEAF=0.500,0.00;
    #   MQRankSum=-1.735;RAW_MQandDP=18138,17;ReadPosRankSum=1.135
    #   GT:AD:DP:GQ:PL:SB 0/1:14,3,0:17:34:34,0,384,76,393,470:6,8,2,1
    out, _ = converted(GVCFS["HG00187"])
    row = one_row(rows_of(out, "variants", "HG00187"), pos=10678964)
    check_values(row, {
        "sample_id": "HG00187", "sample_name": "HG00187", "contig": "chr22",
        "pos": 10678964, "end": 10678964, "ref": "A", "alt": "G", "variant_id": "chr22:10678964:A:G",
        "rsid": None, "qual": 26.6, "filters": None, "alleles": ["A", "G", "<NON_REF>"],
        "allele_index": 1, "was_split": True, "gt": [0, 1], "gt_phased": False,
        "fmt_ad": [14, 3], "fmt_dp": 17, "fmt_pl": [34, 0, 384], "fmt_gq": 34, "fmt_sb": [6, 8, 2, 1],
        "fmt_min_dp": None, "fmt_pgt": None, "fmt_pid": None, "fmt_ps": None,
        "info_dp": 17, "info_mleac": [1, 0], "info_mleaf": [0.5, 0.0],
        "info_as_raw_mq": "15853.00|2285.00|0.00", "info_as_sb_table": "6,8|2,1|0,0",
        "info_as_raw_baseqranksum": "|0.9,1|NaN", "info_baseqranksum": 0.952,
        "info_excesshet": 3.0103, "info_raw_mqanddp": [18138, 17], "info_readposranksum": 1.135,
        "info_mqranksum": -1.735, "info_ds": False, "info_end": None, "info_inbreedingcoeff": None,
        "gt_unsplit": [0, 1], "fmt_ad_unsplit": [14, 3, 0],
        "fmt_pl_unsplit": [34, 0, 384, 76, 393, 470], "fmt_gq_unsplit": 34, "fmt_pgt_unsplit": None,
    }, "HG00187 chr22:10678964")
    assert isinstance(row["info_mleaf"][0], float) and isinstance(row["qual"], float)


def test_hg00187_reference_block(converted):
    # chr22 10571576 . T <NON_REF> . . END=10571586 GT:DP:GQ:MIN_DP:PL 0/0:1:3:1:0,3,14
    out, _ = converted(GVCFS["HG00187"])
    rows = rows_of(out, "reference_blocks", "HG00187")
    row = one_row(rows, pos=10571576)
    check_values(row, {
        "sample_id": "HG00187", "contig": "chr22", "pos": 10571576, "end": 10571586, "ref": "T",
        "alt": None, "rsid": None, "qual": None, "filters": None,
        "alleles": ["T", "<NON_REF>"], "allele_index": 0, "gt": [0, 0], "gt_phased": False,
        "fmt_dp": 1, "fmt_gq": 3, "fmt_min_dp": 1, "fmt_pl": [0, 3, 14], "fmt_ad": None,
        "info_end": 10571586, "info_dp": None, "info_ds": False,
    }, "HG00187 ref block chr22:10571576")
    # the first record of the file: a 61.5 kb block with END=10571575
    first = one_row(rows, pos=10510001)
    check_values(first, {"end": 10571575, "ref": "G", "fmt_gq": 0, "fmt_pl": [0, 0, 0], "gt": [0, 0]},
                 "HG00187 ref block chr22:10510001")
    # <NON_REF> is never a row
    assert not find_rows(rows_of(out, "variants", "HG00187"), alt="<NON_REF>")


def test_hg00187_phased_record_with_pgt(converted):
    # chr22 10699965 . C T,<NON_REF> 0 . ... GT:AD:DP:GQ:PGT:PID:PL:PS:SB
    #   0|0:4,0,0:4:12:0|1:10699782_TGGC..._T:0,12,1181,12,1181,1181:10699782:3,1,0,0
    out, _ = converted(GVCFS["HG00187"])
    row = one_row(rows_of(out, "variants", "HG00187"), pos=10699965)
    check_values(row, {
        "ref": "C", "alt": "T", "qual": 0.0, "gt": [0, 0], "gt_phased": True, "fmt_ad": [4, 0],
        "fmt_pl": [0, 12, 1181], "fmt_gq": 12, "fmt_pgt": "0|1", "fmt_pgt_unsplit": "0|1",
        "fmt_ps": 10699782, "fmt_sb": [3, 1, 0, 0], "was_split": True, "allele_index": 1,
    }, "HG00187 chr22:10699965")
    assert row["fmt_pid"].startswith("10699782_TGGCTTTTTGCC") and row["fmt_pid"].endswith("CCGC_T")


@pytest.mark.parametrize("sample,ad,dp,pl,split", [
    # chr22 10685603 . T C,G,<NON_REF> 0/2:4,2,3,0:9:53:69,53,164,0,88,108,81,169,117,198
    ("HG00187", [4, 2, 3, 0], 9, [69, 53, 164, 0, 88, 108, 81, 169, 117, 198],
     {1: dict(alt="C", ad=[7, 2], pl=[0, 53, 164], gq=53, gt=[0, 0]),
      2: dict(alt="G", ad=[6, 3], pl=[53, 0, 108], gq=53, gt=[0, 1])}),
    # chr22 10685603 . T C,G,<NON_REF> 0/2:16,2,5,0:23:91:91,95,537,0,405,433,139,543,448,587
    ("NA20317", [16, 2, 5, 0], 23, [91, 95, 537, 0, 405, 433, 139, 543, 448, 587],
     {1: dict(alt="C", ad=[21, 2], pl=[0, 95, 537], gq=95, gt=[0, 0]),
      2: dict(alt="G", ad=[18, 5], pl=[91, 0, 433], gq=91, gt=[0, 1])}),
])
def test_three_alt_record_is_split_hail_style(sample, ad, dp, pl, split, converted):
    out, _ = converted(GVCFS[sample])
    rows = find_rows(rows_of(out, "variants", sample), contig="chr22", pos=10685603)
    assert sorted(r["allele_index"] for r in rows) == [1, 2], rows
    for r in rows:
        e = split[r["allele_index"]]
        check_values(r, {
            "ref": "T", "alt": e["alt"], "end": 10685603, "variant_id": f"chr22:10685603:T:{e['alt']}",
            "was_split": True, "alleles": ["T", "C", "G", "<NON_REF>"],
            "gt": e["gt"], "gt_phased": False, "fmt_ad": e["ad"], "fmt_pl": e["pl"], "fmt_gq": e["gq"],
            "fmt_dp": dp, "gt_unsplit": [0, 2], "fmt_ad_unsplit": ad, "fmt_pl_unsplit": pl,
            "fmt_gq_unsplit": {"HG00187": 53, "NA20317": 91}[sample], "fmt_pgt_unsplit": None,
            "info_mleac": [0, 1, 0], "info_mleaf": [0.0, 0.5, 0.0],
        }, f"{sample} chr22:10685603 allele {r['allele_index']}")


def test_spanning_deletion_allele_is_not_a_row(converted):
    # chr22 11050548 . C *,A,<NON_REF> 59.30 . ...MLEAC=0,1,0;MLEAF=0.00,0.500,0.00...
    #   GT:AD:DP:GQ:PL:SB 2/2:0,0,1,0:1:2:80,46,43,6,2,0,65,46,6,62:0,0,0,1
    out, report = converted(GVCFS["HG01377"])
    rows = find_rows(rows_of(out, "variants", "HG01377"), pos=11050548)
    assert len(rows) == 1, rows
    check_values(rows[0], {
        "ref": "C", "alt": "A", "allele_index": 2, "was_split": True, "variant_id": "chr22:11050548:C:A",
        "alleles": ["C", "*", "A", "<NON_REF>"], "qual": 59.3,
        "gt": [1, 1], "fmt_ad": [0, 1], "fmt_pl": [43, 2, 0], "fmt_gq": 2, "fmt_dp": 1,
        "gt_unsplit": [2, 2], "fmt_ad_unsplit": [0, 0, 1, 0],
        "fmt_pl_unsplit": [80, 46, 43, 6, 2, 0, 65, 46, 6, 62], "fmt_gq_unsplit": 2,
        "info_mleac": [0, 1, 0], "info_mleaf": [0.0, 0.5, 0.0],
    }, "HG01377 chr22:11050548")
    assert not find_rows(rows_of(out, "variants", "HG01377"), alt="*")
    # the record still counts as a variant record (it has the A allele)
    assert report.samples["HG01377"].spanning_deletion_records == 0


def test_spanning_deletion_only_record_is_counted_not_written(convert_vcf, tmp_path, expected):
    """Derived from HG01377: its *,A,<NON_REF> record rewritten as *,<NON_REF> (a spanning-
    deletion-only record), kept between a reference block and a variant record."""
    lines = gzip.open(GVCFS["HG01377"], "rt").read().splitlines(keepends=True)
    header = [l for l in lines if l.startswith("#")]
    body = [l for l in lines if not l.startswith("#")]
    ref_block = next(l for l in body if l.split("\t")[4] == "<NON_REF>")
    variant = next(l for l in body if l.split("\t")[1] == "11050539")
    star = ("chr22\t11050548\t.\tC\t*,<NON_REF>\t59.30\t.\tDP=1;MLEAC=1,0;MLEAF=0.500,0.00\t"
            "GT:AD:DP:GQ:PL:SB\t1/1:0,1,0:1:3:45,3,0,45,3,45:0,0,0,1\n")
    path = tmp_path / "star_only.g.vcf"
    path.write_text("".join(header + [ref_block, variant, star]))
    out = tmp_path / "lake"
    report = convert_vcf(str(path), str(out))
    rs = report.samples["HG01377"]
    assert report.records_read == 3
    assert (rs.variant_records, rs.reference_block_records, rs.spanning_deletion_records) == (1, 1, 1)
    assert (rs.variant_rows, rs.reference_block_rows) == (1, 1)
    variants = rows_of(out, "variants", "HG01377")
    assert [(r["pos"], r["alt"]) for r in variants] == [(11050539, "A")]
    assert all(r["pos"] != 11050548 for r in rows_of(out, "reference_blocks", "HG01377"))
    assert_rows_match_oracle(out, expected(path), "star_only")


# ---------------------------------------------------------------------------------------------
# the 100-sample cohort VCF: per-sample fan-out
# ---------------------------------------------------------------------------------------------

def cohort_samples() -> list[str]:
    with pysam.VariantFile(str(COHORT)) as vf:
        return list(vf.header.samples)


def test_cohort_one_partition_per_sample(converted):
    out, report = converted(COHORT)
    names = cohort_samples()
    assert len(names) == 100
    ids = {sample_id_for(n) for n in names}
    assert len(ids) == 100
    assert all(is_safe_sample_id(i) for i in ids)
    assert sample_id_for("C1046::HG02024").startswith("C1046_HG02024-")
    assert set(report.samples) == set(names)
    for n in names:
        assert report.samples[n].sample_id == sample_id_for(n)
    for table in TABLES:
        dirs = {p.name for p in (out / table).iterdir()}
        assert dirs <= {f"sample_id={i}" for i in ids}, sorted(dirs - {f"sample_id={i}" for i in ids})
    # every written file is a part-00000.parquet under a known partition
    for f in written_files(out):
        table, part, fname = f.split("/")
        assert table in TABLES and fname == "part-00000.parquet" and part[len("sample_id="):] in ids, f


def test_cohort_counts_per_sample(converted):
    """Per sample, from pysam: variant rows = records where the GT has a non-ref or missing allele
    (times the ALT alleles of the record); hom-ref calls are one-record reference blocks."""
    out, report = converted(COHORT)
    names = cohort_samples()
    exp_var = {n: 0 for n in names}
    exp_var_rec = {n: 0 for n in names}
    exp_ref = {n: 0 for n in names}
    total = 0
    with pysam.VariantFile(str(COHORT)) as vf:
        for rec in vf:
            total += 1
            n_alts = len([a for a in rec.alts if a not in ("<NON_REF>", "*")])
            for n in names:
                gt = rec.samples[n].get("GT")
                if gt is not None and len(gt) and all(a == 0 for a in gt):
                    exp_ref[n] += 1
                else:
                    exp_var[n] += n_alts
                    exp_var_rec[n] += 1
    assert total == 346
    assert report.records_read == total
    if shutil.which("bcftools"):
        body = subprocess.run(["bcftools", "view", "-H", str(COHORT)], check=True, capture_output=True).stdout
        assert body.count(b"\n") == total
    problems = []
    for n in names:
        rs = report.samples[n]
        sid = sample_id_for(n)
        got = (rs.variant_rows, rs.reference_block_rows, rs.variant_records, rs.reference_block_records,
               rs.spanning_deletion_records)
        want = (exp_var[n], exp_ref[n], exp_var_rec[n], exp_ref[n], 0)
        if got != want:
            problems.append(f"{n}: report {got}, expected {want}")
        files = (len(rows_of(out, "variants", sid)), len(rows_of(out, "reference_blocks", sid)))
        if files != (exp_var[n], exp_ref[n]):
            problems.append(f"{n}: files hold {files}, expected {(exp_var[n], exp_ref[n])}")
        if rs.variant_records + rs.reference_block_records + rs.spanning_deletion_records != report.records_read:
            problems.append(f"{n}: records do not add up to records_read")
    assert not problems, "\n".join(problems[:30])


def test_cohort_rows_match_oracle(converted, expected):
    out, _ = converted(COHORT)
    assert_rows_match_oracle(out, expected(COHORT), "cohort")


def test_cohort_sample_name_column_holds_original_name(converted):
    out, _ = converted(COHORT)
    for n in cohort_samples():
        sid = sample_id_for(n)
        for table in TABLES:
            t = read_part(out, table, sid)
            if t is None:
                continue
            assert set(t.column("sample_name").to_pylist()) == {n}, (n, table)
            assert set(t.column("sample_id").to_pylist()) == {sid}, (n, table)


def test_cohort_spot_genotypes(converted):
    out, _ = converted(COHORT)
    s1, s2 = "C1046::HG02024", "C1046::HG02025"
    id1, id2 = sample_id_for(s1), sample_id_for(s2)
    # 20 10019093 rs575534 A G 1686840.00 PASS ...AC=89;culprit=FS;...AF=0.582;...POSITIVE_TRAIN_SITE;
    #   ...MLEAC=1012;...;DB;... GT:AD:DP:GQ:PL   s1 0/0:30,0:30:72:0,72,1080   s2 0/1:49,45:94:99:1352,0,1480
    info = {"rsid": "rs575534", "qual": 1686840.0, "filters": ["PASS"], "alleles": ["A", "G"],
            "info_ac": [89], "info_af": [0.582], "info_an": 200, "info_culprit": "FS", "info_db": True,
            "info_positive_train_site": True, "info_negative_train_site": False, "info_mleac": [1012],
            "info_hwp": 1.0e-4, "info_haplotypescore": None, "info_end": None}
    assert not find_rows(rows_of(out, "variants", id1), pos=10019093)
    check_values(one_row(rows_of(out, "reference_blocks", id1), pos=10019093), {
        "sample_name": s1, "sample_id": id1, "contig": "20", "end": 10019093, "ref": "A", "alt": None,
        "allele_index": 0, "gt": [0, 0], "gt_phased": False,
        "fmt_ad": [30, 0], "fmt_dp": 30, "fmt_gq": 72, "fmt_pl": [0, 72, 1080], **info,
    }, f"{s1} 20:10019093")
    assert not find_rows(rows_of(out, "reference_blocks", id2), pos=10019093)
    check_values(one_row(rows_of(out, "variants", id2), pos=10019093), {
        "sample_name": s2, "sample_id": id2, "end": 10019093, "ref": "A", "alt": "G",
        "variant_id": "20:10019093:A:G", "allele_index": 1, "was_split": False, "gt": [0, 1],
        "gt_phased": False, "fmt_ad": [49, 45], "fmt_dp": 94, "fmt_gq": 99, "fmt_pl": [1352, 0, 1480],
        "gt_unsplit": None, "fmt_ad_unsplit": None, "fmt_pl_unsplit": None, "fmt_gq_unsplit": None, **info,
    }, f"{s2} 20:10019093")
    # 20 10256252 rs362585 G T 35632.00 PASS; HG00403 ./.:0,0:0:.:.  -> not fully called: a variant row
    check_values(one_row(rows_of(out, "variants", "HG00403"), pos=10256252), {
        "ref": "G", "alt": "T", "rsid": "rs362585", "gt": None, "gt_phased": None,
        "fmt_ad": [0, 0], "fmt_dp": 0, "fmt_gq": None, "fmt_pl": None, "info_ac": [18], "info_an": 196,
    }, "HG00403 20:10256252")
    assert not find_rows(rows_of(out, "reference_blocks", "HG00403"), pos=10256252)
    # 20 10036107 . T G 1942.46 VQSRTrancheSNP99.95to100.00; s1 0/0:26,0:26:66:0,66,990
    check_values(one_row(rows_of(out, "reference_blocks", id1), pos=10036107), {
        "rsid": None, "qual": 1942.46, "filters": ["VQSRTrancheSNP99.95to100.00"], "fmt_gq": 66,
        "end": 10036107, "gt": [0, 0],
    }, f"{s1} 20:10036107")
    # 20 10273694 . CT C 29059.60 VQSRTrancheINDEL97.00to99.00; s1 0/0:33,4:41:43:0,43,947
    #   a hom-ref call on a 2-base REF: a one-record block with end = pos + len(ref) - 1
    #   (the file also has "20 10273694 . C CT" at the same position; s1 is 0/0 there too)
    check_values(one_row(rows_of(out, "reference_blocks", id1), pos=10273694, ref="CT"), {
        "ref": "CT", "end": 10273695, "alleles": ["CT", "C"],
        "fmt_ad": [33, 4], "fmt_dp": 41, "fmt_gq": 43, "fmt_pl": [0, 43, 947],
        "filters": ["VQSRTrancheINDEL97.00to99.00"],
    }, f"{s1} 20:10273694")
    # 20 10622080 . CA C 567188.00 PASS; s1 0/1:45,39:84:99:845,0,973
    check_values(one_row(rows_of(out, "variants", id1), pos=10622080), {
        "ref": "CA", "alt": "C", "end": 10622081, "variant_id": "20:10622080:CA:C", "gt": [0, 1],
        "fmt_ad": [45, 39], "fmt_pl": [845, 0, 973], "was_split": False, "allele_index": 1,
    }, f"{s1} 20:10622080")


def test_cohort_sample_subset(converted, expected):
    subset = ["C1046::HG02024", "HG00096"]
    out, report = converted(COHORT, subset)
    assert report.records_read == 346
    assert set(report.samples) == set(subset)
    ids = {sample_id_for(n) for n in subset}
    for table in TABLES:
        assert {p.name for p in (out / table).iterdir()} == {f"sample_id={i}" for i in ids}
    assert_rows_match_oracle(out, expected(COHORT, subset), "cohort subset")


# ---------------------------------------------------------------------------------------------
# missing values inside INFO arrays (valid VCF): converts, with null list elements
# ---------------------------------------------------------------------------------------------

def test_missing_info_array_elements_convert_to_nulls(convert_vcf, tmp_path, expected):
    # X 16050036 . A C 19961.13 . FOO=1,.;BAR=2,.,.;JUST_A_DOT=.   s1 0/0:...   s2 1:...
    # X 16061250 . T A,C 547794.46 . FOO=.,2,.;BAR=.,1.0,.;JUST_A_DOT=.   s1 2/2:...  s2 2:...
    path = BAD / "missingInfoArray.vcf"
    out = tmp_path / "lake"
    report = convert_vcf(str(path), str(out))
    assert report.records_read == 2
    s1, s2 = "C1046::HG02024", "C1046::HG02025"
    id1, id2 = sample_id_for(s1), sample_id_for(s2)
    # s1: record 1 is a hom-ref call (reference block), record 2 splits into two variant rows
    blocks = rows_of(out, "reference_blocks", id1)
    assert [(r["pos"], r["end"]) for r in blocks] == [(16050036, 16050036)]
    assert blocks[0]["info_foo"] == [1, None]
    assert blocks[0]["info_bar"] == [2.0, None, None]
    v1 = rows_of(out, "variants", id1)
    assert sorted((r["pos"], r["alt"], r["allele_index"]) for r in v1) == [(16061250, "A", 1), (16061250, "C", 2)]
    for r in v1:
        assert r["info_foo"] == [None, 2, None]
        assert r["info_bar"] == [None, 1.0, None]
        assert r["info_just_a_dot"] is None or all(x is None for x in r["info_just_a_dot"])
        assert r["info_not_even_present"] is None
        assert r["gt"] == ([0, 0] if r["alt"] == "A" else [1, 1])
        assert r["gt_unsplit"] == [2, 2]
        assert r["fmt_gta"] == "2/1" and r["fmt_gtz"] == "1/1"
    # s2: haploid calls, all variant rows
    v2 = rows_of(out, "variants", id2)
    assert sorted((r["pos"], r["alt"]) for r in v2) == [(16050036, "C"), (16061250, "A"), (16061250, "C")]
    hap = one_row(v2, pos=16050036)
    check_values(hap, {"gt": [1], "gt_phased": False, "was_split": False, "fmt_pl": [70, 0],
                       "fmt_ad": [0, 6], "fmt_gta": None, "fmt_gtz": "0", "info_foo": [1, None]},
                 "missingInfoArray s2 X:16050036")
    assert one_row(v2, pos=16061250, alt="A")["gt"] == [0]
    assert one_row(v2, pos=16061250, alt="C")["gt"] == [1]
    assert not rows_of(out, "reference_blocks", id2)
    assert_rows_match_oracle(out, expected(path), "missingInfoArray")


# ---------------------------------------------------------------------------------------------
# unsafe sample names convert to path-safe ids
# ---------------------------------------------------------------------------------------------

UNSAFE_VCF = """##fileformat=VCFv4.2
##contig=<ID=chr1,length=1000>
##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t../x\ta'; drop table
chr1\t10\t.\tA\tG\t50\tPASS\tDP=10\tGT:DP\t0/1:5\t0/0:5
chr1\t20\t.\tC\tT\t50\tPASS\tDP=10\tGT:DP\t0/0:5\t1/1:5
chr1\t30\t.\tG\tA\t50\tPASS\tDP=10\tGT:DP\t./.:0\t0/1:5
"""


def test_unsafe_sample_names_are_converted_to_safe_ids(convert_vcf, tmp_path, expected):
    path = tmp_path / "unsafe_names.vcf"
    path.write_text(UNSAFE_VCF)
    out = tmp_path / "deep" / "lake"
    out.mkdir(parents=True)
    before_outside = {p for p in tmp_path.rglob("*") if out not in p.parents and p != out}
    report = convert_vcf(str(path), str(out))
    names = ["../x", "a'; drop table"]
    assert set(report.samples) == set(names)
    for n in names:
        sid = report.samples[n].sample_id
        assert sid == sample_id_for(n)
        assert is_safe_sample_id(sid) and "/" not in sid and "'" not in sid and " " not in sid
    # everything written stays under out_dir, and nothing appeared elsewhere
    root = out.resolve()
    for f in out.rglob("*"):
        assert root in f.resolve().parents, f
    after_outside = {p for p in tmp_path.rglob("*") if out not in p.parents and p != out}
    assert after_outside == before_outside
    for table in TABLES:
        for d in (out / table).iterdir():
            assert d.name.startswith("sample_id=") and is_safe_sample_id(d.name[len("sample_id="):])
    xid, did = sample_id_for("../x"), sample_id_for("a'; drop table")
    assert [(r["pos"], r["alt"]) for r in rows_of(out, "variants", xid)] == [(10, "G"), (30, "A")]
    assert [r["pos"] for r in rows_of(out, "reference_blocks", xid)] == [20]
    assert [(r["pos"], r["alt"]) for r in rows_of(out, "variants", did)] == [(20, "T"), (30, "A")]
    assert [r["pos"] for r in rows_of(out, "reference_blocks", did)] == [10]
    assert {r["sample_name"] for r in rows_of(out, "variants", xid)} == {"../x"}
    assert {r["sample_name"] for r in rows_of(out, "variants", did)} == {"a'; drop table"}
    assert_rows_match_oracle(out, expected(path), "unsafe names")


# ---------------------------------------------------------------------------------------------
# bad input: VcfFormatError naming file (and line/field), nothing written
# ---------------------------------------------------------------------------------------------

def _hg00187_lines() -> list[str]:
    with gzip.open(GVCFS["HG00187"], "rt") as fh:
        return fh.read().splitlines(keepends=True)


def _edit_record(lines: list[str], pick, edit) -> tuple[list[str], int]:
    """Apply edit(fields) to the first body line where pick(fields); return (lines, 1-based line)."""
    for i, line in enumerate(lines):
        if line.startswith("#"):
            continue
        fields = line.rstrip("\n").split("\t")
        if pick(fields):
            lines = list(lines)
            lines[i] = "\t".join(edit(fields)) + "\n"
            return lines, i + 1
    raise AssertionError("no record matched")


def _set_fmt(key: str, value: str):
    def edit(f):
        keys = f[8].split(":")
        vals = f[9].split(":")
        vals[keys.index(key)] = value
        f[9] = ":".join(vals)
        return f
    return edit


def _set_info(key: str, value: str):
    def edit(f):
        f[7] = ";".join(f"{key}={value}" if kv.split("=")[0] == key else kv for kv in f[7].split(";"))
        return f
    return edit


def case_malformed(tmp):
    # line 54: a record cut short and run into the next one (164 columns for 10 samples + 9)
    return BAD / "malformed.vcf", 54, None


def case_bad_flag_number(tmp):
    # ##INFO=<ID=BAD_FLAG,Number=.,Type=Flag> on line 3: a Flag must have Number=0
    return BAD / "bad_flag_number.vcf", None, "BAD_FLAG"


def case_truncated_bgzip(tmp):
    data = GVCFS["HG00187"].read_bytes()
    p = tmp / "HG00187.truncated.g.vcf.gz"
    p.write_bytes(data[: len(data) // 2])
    return p, None, None


def case_non_integer_format(tmp):
    lines, line_no = _edit_record(_hg00187_lines(), lambda f: f[1] == "10571576", _set_fmt("MIN_DP", "x1"))
    p = tmp / "non_integer_min_dp.g.vcf"
    p.write_text("".join(lines))
    return p, line_no, "MIN_DP"


def case_non_integer_info(tmp):
    lines, line_no = _edit_record(_hg00187_lines(), lambda f: f[1] == "10678984", _set_info("MLEAC", "1.5,0"))
    p = tmp / "non_integer_mleac.g.vcf"
    p.write_text("".join(lines))
    return p, line_no, "MLEAC"


def case_undeclared_info_key(tmp):
    def edit(f):
        f[7] += ";NOT_IN_HEADER=1"
        return f
    lines, line_no = _edit_record(_hg00187_lines(), lambda f: f[1] == "10679104", edit)
    p = tmp / "undeclared_info.g.vcf"
    p.write_text("".join(lines))
    return p, line_no, "NOT_IN_HEADER"


def test_undeclared_info_key_is_kept_verbatim(convert_vcf, tmp_path):
    """An INFO key missing from the header is not typed (the header is the schema) but never lost."""
    path, line_no, key = case_undeclared_info_key(tmp_path)
    out = tmp_path / "lake"
    convert_vcf(str(path), str(out))
    t = require_part(out, "variants", "HG00187")
    rows = [r for r in t.to_pylist() if r["pos"] == 10679104]
    assert rows and all(r["undeclared_info"] == "NOT_IN_HEADER=1" for r in rows)
    others = [r["undeclared_info"] for r in t.to_pylist() if r["pos"] != 10679104]
    assert set(others) == {None}


def case_undeclared_format_key(tmp):
    def edit(f):
        f[8] += ":ZZ"
        f[9] += ":7"
        return f
    lines, line_no = _edit_record(_hg00187_lines(), lambda f: f[1] == "10571588", edit)
    p = tmp / "undeclared_format.g.vcf"
    p.write_text("".join(lines))
    return p, line_no, "ZZ"


def case_colliding_keys(tmp):
    lines = _hg00187_lines()
    i = next(i for i, l in enumerate(lines) if l.startswith("##INFO=<ID=DP,"))
    lines.insert(i + 1, '##INFO=<ID=Dp,Number=1,Type=Integer,Description="collides with DP">\n')
    p = tmp / "colliding_keys.g.vcf"
    p.write_text("".join(lines))
    return p, None, "DP"


def case_empty(tmp):
    p = tmp / "empty.vcf"
    p.write_bytes(b"")
    return p, None, None


def case_random_bytes(tmp):
    p = tmp / "random.vcf.gz"
    p.write_bytes(bytes((i * 7919 + 13) % 256 for i in range(4096)))
    return p, None, None


def case_png(tmp):
    p = tmp / "picture.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
                  b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84"
                  b"\x00\x00\x00\x00IEND\xaeB`\x82")
    return p, None, None


def case_text(tmp):
    p = tmp / "notes.txt"
    p.write_text("sample\tvalue\nHG00187\t42\nthis is not a VCF\n")
    return p, None, None


def case_no_chrom_line(tmp):
    p = tmp / "no_header_line.vcf"
    p.write_text("##fileformat=VCFv4.2\n1\t100\t.\tA\tC\t50\tPASS\t.\n")
    return p, None, None


BAD_CASES = [case_malformed, case_bad_flag_number, case_truncated_bgzip, case_non_integer_format,
             case_non_integer_info, case_undeclared_format_key, case_colliding_keys, case_empty,
             case_random_bytes, case_png, case_text, case_no_chrom_line]


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda c: c.__name__[len("case_"):])
def test_bad_input_raises_vcf_format_error(case, convert_vcf, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    path, line, field_name = case(src)
    out = tmp_path / "lake"
    with pytest.raises(VcfFormatError) as info:
        convert_vcf(str(path), str(out))
    err = info.value
    msg = str(err)
    assert path.name in msg, msg
    assert Path(err.detail.file).name == path.name, err.detail
    if line is not None:
        assert err.detail.line == line, f"line {err.detail.line}, expected {line}: {msg}"
        assert f"line {line}" in msg, msg
    if field_name is not None:
        assert err.detail.field is not None and field_name.lower() in err.detail.field.lower(), err.detail
        assert field_name.lower() in msg.lower(), msg
    assert written_files(out) == [], f"{path.name}: files written despite the error: {written_files(out)}"


def test_bad_flag_number_file_is_really_invalid():
    """Sanity check of the test data: the header says Number=. for a Flag."""
    text = (BAD / "bad_flag_number.vcf").read_text().splitlines()
    assert text[2] == '##INFO=<ID=BAD_FLAG,Number=.,Type=Flag,Description="">'


def test_malformed_file_is_really_malformed():
    """Sanity check of the test data: line 54 has 164 tab-separated columns, the header 109."""
    lines = (BAD / "malformed.vcf").read_text().splitlines()
    header = next(l for l in lines if l.startswith("#CHROM"))
    assert len(header.split("\t")) == 109
    assert len(lines[53].split("\t")) == 164
    body = [(i + 1, l) for i, l in enumerate(lines) if not l.startswith("#")]
    assert [n for n, l in body if len(l.split("\t")) != 109] == [54]


def test_header_key_named_undeclared_is_an_ordinary_column(convert_vcf, tmp_path, expected):
    """An INFO key may be called anything the VCF spec allows, including UNDECLARED."""
    path = tmp_path / "undeclared_key.vcf"
    path.write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=1000>\n"
        '##INFO=<ID=UNDECLARED,Number=1,Type=Integer,Description="a legitimate key">\n'
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n"
        "chr1\t10\t.\tA\tG\t50\tPASS\tUNDECLARED=5\tGT\t0/1\n")
    out = tmp_path / "lake"
    convert_vcf(str(path), str(out))
    t = require_part(out, "variants", "S1")
    assert t.schema.field("info_undeclared").type == pa.int32()
    assert t.column("info_undeclared").to_pylist() == [5]
    assert_rows_match_oracle(out, expected(path), "UNDECLARED key")


MULTI_INDEL_VCF = """##fileformat=VCFv4.2
##contig=<ID=chr1,length=100000>
##ALT=<ID=NON_REF,Description="Represents any possible alternative allele at this location">
##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">
##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">
##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype Quality">
##FORMAT=<ID=PL,Number=G,Type=Integer,Description="Phred-scaled likelihoods">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1
chr1\t100\t.\tTAA\tT,TA,<NON_REF>\t50\tPASS\tDP=20\tGT:AD:DP:GQ:PL\t1/2:2,8,9,1:20:30:300,100,200,90,0,250,400,300,350,500
chr1\t200\t.\tCAG\tCTG,C\t60\tPASS\tDP=10\tGT:AD:DP:GQ:PL\t0/1:5,5,0:10:40:40,0,50,200,210,300
"""


def test_multi_allelic_indels_min_rep_and_split(convert_vcf, tmp_path, expected):
    """Synthetic single-sample records: min_rep trims suffix then prefix (moving pos), end follows
    the trimmed REF, PL/GQ/AD/GT follow split_multi_hts. Expected values worked out by hand."""
    path = tmp_path / "multi_indel.vcf"
    path.write_text(MULTI_INDEL_VCF)
    out = tmp_path / "lake"
    report = convert_vcf(str(path), str(out))
    assert report.samples["S1"].variant_rows == 4
    rows = rows_of(out, "variants", "S1")
    assert [(r["pos"], r["ref"], r["alt"], r["allele_index"]) for r in rows] == [
        (100, "TAA", "T", 1), (100, "TA", "T", 2), (200, "CAG", "C", 2), (201, "A", "T", 1)]
    want = {
        (100, 1): dict(end=102, variant_id="chr1:100:TAA:T", gt=[0, 1], fmt_ad=[12, 8], fmt_pl=[90, 0, 200],
                       fmt_gq=90),
        (100, 2): dict(end=101, variant_id="chr1:100:TA:T", gt=[0, 1], fmt_ad=[11, 9], fmt_pl=[100, 0, 250],
                       fmt_gq=99),
        (200, 2): dict(end=202, variant_id="chr1:200:CAG:C", gt=[0, 0], fmt_ad=[10, 0], fmt_pl=[0, 200, 300],
                       fmt_gq=99),
        (201, 1): dict(end=201, variant_id="chr1:201:A:T", gt=[0, 1], fmt_ad=[5, 5], fmt_pl=[40, 0, 50],
                       fmt_gq=40),
    }
    for r in rows:
        check_values(r, {**want[(r["pos"], r["allele_index"])], "was_split": True}, f"chr1:{r['pos']}")
    assert rows[0]["alleles"] == ["TAA", "T", "TA", "<NON_REF>"]
    assert rows[0]["fmt_pl_unsplit"] == [300, 100, 200, 90, 0, 250, 400, 300, 350, 500]
    assert rows[0]["gt_unsplit"] == [1, 2] and rows[0]["fmt_gq_unsplit"] == 30
    assert rows[3]["alleles"] == ["CAG", "CTG", "C"]
    assert_rows_match_oracle(out, expected(path), "multi_indel")


MULTI_SAMPLE_MULTI_ALLELIC_VCF = """##fileformat=VCFv4.2
##contig=<ID=chr1,length=1000>
##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2
chr1\t10\t.\tA\tG\t50\tPASS\tDP=10\tGT:DP\t0/1:5\t0/0:6
chr1\t20\t.\tC\tT\t50\tPASS\tDP=11\tGT:DP\t0/0:7\t1/1:8
chr1\t30\t.\tG\tA,C\t50\tPASS\tDP=12\tGT:DP\t./.:0\t0/2:9
"""


def test_multi_sample_fan_out_with_a_multi_allelic_record(convert_vcf, tmp_path, expected):
    """Per sample, each variant row must come from the record (and ALT) it describes."""
    path = tmp_path / "two_samples.vcf"
    path.write_text(MULTI_SAMPLE_MULTI_ALLELIC_VCF)
    out = tmp_path / "lake"
    report = convert_vcf(str(path), str(out))
    cols = ("pos", "ref", "alt", "allele_index", "alleles", "gt", "fmt_dp", "info_dp")
    got = {s: [tuple(r[c] for c in cols) for r in rows_of(out, "variants", s)] for s in ("S1", "S2")}
    assert got == {
        "S1": [(10, "A", "G", 1, ["A", "G"], [0, 1], 5, 10),
               (30, "G", "A", 1, ["G", "A", "C"], None, 0, 12),
               (30, "G", "C", 2, ["G", "A", "C"], None, 0, 12)],
        "S2": [(20, "C", "T", 1, ["C", "T"], [1, 1], 8, 11),
               (30, "G", "A", 1, ["G", "A", "C"], [0, 0], 9, 12),
               (30, "G", "C", 2, ["G", "A", "C"], [0, 1], 9, 12)],
    }
    assert [(r["pos"], r["fmt_dp"]) for r in rows_of(out, "reference_blocks", "S1")] == [(20, 7)]
    assert [(r["pos"], r["fmt_dp"]) for r in rows_of(out, "reference_blocks", "S2")] == [(10, 6)]
    for s in ("S1", "S2"):
        rs = report.samples[s]
        assert (rs.variant_records, rs.variant_rows, rs.reference_block_records, rs.reference_block_rows) == (2, 3, 1, 1)
    assert_rows_match_oracle(out, expected(path), "two samples")
