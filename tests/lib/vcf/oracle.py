"""An independent oracle for the VCF -> Parquet converter, built on pysam (htslib).

It computes, from ``docs/variant-table.md`` alone, the rows the converter must write for each
sample: which record goes to which table, Hail ``split_multi_hts`` semantics for multi-allelic
records (min_rep, downcoded GT/PGT, AD, PL, GQ), typed INFO/FORMAT values and the per-sample
report counts. It deliberately shares no code with ``genolake_assets.lib`` (only
``sample_id_for``, which is a given of the contract, is passed in by the caller).

pysam quirks this module corrects for, all checked against the raw VCF text:

* htslib consumes INFO ``END`` into ``rec.stop`` and hides it from ``rec.info``; the presence of
  ``END`` is read from the record text (``str(rec)``).
* a ``Number=1`` String value that contains commas (GATK's ``AS_SB_TABLE=6,8|2,1|0,0``) is split
  into a tuple by pysam; the spec wants the scalar string, so the tuple is joined back.
* pysam reports a haploid GT as phased; the spec says ``gt_phased`` is true only for ``|``.
* Float values come back rounded to float32; comparisons use a relative tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import pysam

#: ALT alleles that are never rows of their own.
SYMBOLIC_REF_ALTS = {"<NON_REF>", "<*>"}
STAR = "*"

#: Marker for a value the spec does not define (the comparator skips it).
UNSPECIFIED = object()

#: The core columns of both tables, in spec order (`variant_id` and `was_split`: variants only).
CORE_COLUMNS = [
    "sample_id", "sample_name", "contig", "pos", "end", "ref", "alt", "variant_id", "rsid", "qual",
    "filters", "alleles", "allele_index", "was_split", "gt", "gt_phased",
]
VARIANT_ONLY_CORE_COLUMNS = {"variant_id", "was_split"}
UNSPLIT_FORMAT_KEYS = ["AD", "PL", "GQ", "PGT"]


# --------------------------------------------------------------------------------------------
# Header -> schema
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FieldSpec:
    kind: str          # "INFO" or "FORMAT"
    key: str           # as in the header
    number: Any        # 1, 2, "A", "R", "G", ".", 0
    vcf_type: str      # Integer, Float, Flag, String, Character

    @property
    def column(self) -> str:
        return ("info_" if self.kind == "INFO" else "fmt_") + self.key.lower()

    @property
    def is_list(self) -> bool:
        return self.vcf_type != "Flag" and str(self.number) != "1"

    @property
    def arrow_value_type(self) -> str:
        return {"Integer": "int32", "Float": "float64", "Flag": "bool",
                "String": "string", "Character": "string"}[self.vcf_type]


def header_fields(vf: pysam.VariantFile) -> tuple[list[FieldSpec], list[FieldSpec]]:
    """INFO and FORMAT (without GT) field specs from the header, in header order."""
    infos = [FieldSpec("INFO", k, m.number, m.type) for k, m in vf.header.info.items()]
    fmts = [FieldSpec("FORMAT", k, m.number, m.type) for k, m in vf.header.formats.items() if k != "GT"]
    return infos, fmts


def header_contigs(vf: pysam.VariantFile) -> list[str]:
    return list(vf.header.contigs)


# --------------------------------------------------------------------------------------------
# Hail split_multi_hts semantics, written from the spec
# --------------------------------------------------------------------------------------------

def min_rep(pos: int, ref: str, alt: str) -> tuple[int, str, str]:
    """Hail's min_rep for one [ref, alt] pair: trim the common suffix, then the common prefix,
    always keeping at least one base in each allele; trimming the prefix moves pos."""
    if alt == STAR or alt.startswith("<"):
        return pos, ref, alt
    while len(ref) > 1 and len(alt) > 1 and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    while len(ref) > 1 and len(alt) > 1 and ref[0] == alt[0]:
        ref, alt = ref[1:], alt[1:]
        pos += 1
    return pos, ref, alt


def downcode_alleles(gt: tuple | list | None, i: int, phased: bool) -> list | None:
    """Allele i -> 1, any other allele -> 0; an unphased call's alleles ascending (Hail's call)."""
    if gt is None:
        return None
    out = [1 if a == i else 0 for a in gt]
    return out if phased else sorted(out)


def call_text(value: str | None, i: int | None = None) -> str | None:
    """A call held as text (PGT) as Hail holds it, downcoded for allele ``i`` when given: null when an
    allele is missing, unphased alleles ascending."""
    if value is None:
        return None
    phased = "|" in value
    alleles = value.replace("|", "/").split("/")
    if any(a in (".", "") for a in alleles):
        return None
    numbers = [int(a) for a in alleles]
    if i is not None:
        numbers = [1 if a == i else 0 for a in numbers]
    return ("|" if phased else "/").join(str(a) for a in (numbers if phased else sorted(numbers)))


def diploid_genotype(j: int) -> tuple[int, int]:
    """The unphased diploid genotype (a, b), a <= b, at VCF PL index j (j = b(b+1)/2 + a)."""
    b = 0
    while (b + 1) * (b + 2) // 2 <= j:
        b += 1
    a = j - b * (b + 1) // 2
    return a, b


def split_pl(pl: tuple | list | None, i: int, gt: tuple | None, n_alleles: int) -> list | None:
    """Diploid call: three values, min of the original PLs whose genotype downcodes to 0/0, 0/1, 1/1.
    Haploid call: min of PL[j != i] over the first n_alleles, and PL[i]. No call: none (Hail)."""
    if pl is None or any(v is None for v in pl) or gt is None:
        return None
    if len(gt) == 1:
        if len(pl) < n_alleles:
            return None
        return [min(v for j, v in enumerate(pl[:n_alleles]) if j != i), pl[i]]
    if len(gt) != 2 or len(pl) != n_alleles * (n_alleles + 1) // 2:
        return None
    best: list = [None, None, None]
    for j, v in enumerate(pl):
        if v is None:
            continue
        a, b = diploid_genotype(j)
        k = (1 if a == i else 0) + (1 if b == i else 0)
        best[k] = v if best[k] is None else min(best[k], v)
    return best


def gq_from_pl(pl: list) -> int:
    """Hail's gq_from_pl: second-smallest minus smallest, both starting at 99."""
    m1, m2 = 99, 99
    for v in pl:
        if v is None:
            continue
        if v < m1:
            m1, m2 = v, m1
        elif v < m2:
            m2 = v
    return m2 - m1


def split_ad(ad: tuple | list | None, i: int, n_alleles: int) -> list | None:
    """Hail: [sum(AD) - AD[i], AD[i]], the sum skipping missing depths; a missing AD[i] misses both."""
    if ad is None or len(ad) != n_alleles:
        return None
    if ad[i] is None:
        return [None, None]
    return [sum(v for v in ad if v is not None) - ad[i], ad[i]]


# --------------------------------------------------------------------------------------------
# Record classification
# --------------------------------------------------------------------------------------------

def alt_alleles(rec: pysam.VariantRecord) -> list[str]:
    return list(rec.alts or ())


def is_reference_block_record(rec: pysam.VariantRecord) -> bool:
    alts = alt_alleles(rec)
    return all(a in SYMBOLIC_REF_ALTS or a == "." for a in alts)


def kept_alt_indices(rec: pysam.VariantRecord) -> list[int]:
    """1-based indices of the ALT alleles that become rows."""
    return [k + 1 for k, a in enumerate(alt_alleles(rec))
            if a not in SYMBOLIC_REF_ALTS and a != STAR and a != "."]


def is_spanning_deletion_only(rec: pysam.VariantRecord) -> bool:
    return not is_reference_block_record(rec) and not kept_alt_indices(rec)


def gt_fully_hom_ref(gt: tuple | None) -> bool:
    return gt is not None and len(gt) > 0 and all(a == 0 for a in gt)


# --------------------------------------------------------------------------------------------
# Typed values
# --------------------------------------------------------------------------------------------

def _typed(spec: FieldSpec, value: Any) -> Any:
    if spec.vcf_type == "Flag":
        return bool(value)
    if value is None:
        return None
    if spec.vcf_type in ("String", "Character"):
        # htslib keeps a missing string as the text "."
        if value == ".":
            return None
        if isinstance(value, tuple):
            value = tuple(None if v == "." else v for v in value)
    if spec.is_list:
        if not isinstance(value, tuple):
            value = (value,)
        return list(value)
    if isinstance(value, tuple):
        if spec.vcf_type in ("String", "Character"):
            # pysam splits a Number=1 string on commas; the VCF text is one value.
            return ",".join("." if v is None else v for v in value)
        if len(value) == 1:
            return value[0]
        raise AssertionError(f"{spec.kind}/{spec.key} Number=1 but pysam returned {value!r}")
    return value


def raw_info_keys(rec: pysam.VariantRecord) -> set[str]:
    info = str(rec).rstrip("\n").split("\t")[7]
    if info == ".":
        return set()
    return {kv.split("=", 1)[0] for kv in info.split(";")}


def info_values(rec: pysam.VariantRecord, infos: list[FieldSpec]) -> dict[str, Any]:
    out = {}
    raw_keys = None
    for spec in infos:
        if spec.key == "END":
            if raw_keys is None:
                raw_keys = raw_info_keys(rec)
            out[spec.column] = rec.stop if "END" in raw_keys else None
            continue
        out[spec.column] = _typed(spec, rec.info.get(spec.key))
    return out


def format_values(sample: pysam.VariantRecordSample, fmts: list[FieldSpec]) -> dict[str, Any]:
    return {spec.column: _typed(spec, sample.get(spec.key)) for spec in fmts}


# --------------------------------------------------------------------------------------------
# Expected rows
# --------------------------------------------------------------------------------------------

@dataclass
class ExpectedSample:
    sample_name: str
    sample_id: str
    variants: list[dict] = field(default_factory=list)
    reference_blocks: list[dict] = field(default_factory=list)
    variant_records: int = 0
    reference_block_records: int = 0
    spanning_deletion_records: int = 0


@dataclass
class Expected:
    path: str
    records_read: int
    contigs: list[str]
    infos: list[FieldSpec]
    fmts: list[FieldSpec]
    samples: dict[str, ExpectedSample]
    #: original (contig, pos, ref, alts, per-sample GT text) of every record, for messages
    multi_sample: bool = False


def _gt_of(sample) -> tuple | None:
    """Hail's call: none unless every allele is called; unphased alleles ascending."""
    if "GT" not in sample:
        return None
    gt = sample.get("GT")
    if gt is None or len(gt) == 0 or any(a is None for a in gt):
        return None
    return tuple(gt) if _is_phased(sample, gt) else tuple(sorted(gt))


def _is_phased(sample, gt) -> bool:
    return bool(len(gt) > 1 and sample.phased)


def _phased(sample, gt) -> bool | None:
    return None if gt is None else _is_phased(sample, gt)


def expected_for(path: str, sample_id_for: Callable[[str], str], samples: list[str] | None = None
                 ) -> Expected:
    """Everything the converter must produce for ``path`` (per the written spec)."""
    with pysam.VariantFile(str(path)) as vf:
        infos, fmts = header_fields(vf)
        contigs = header_contigs(vf)
        all_names = list(vf.header.samples)
        names = all_names if samples is None else list(samples)
        multi = len(all_names) > 1
        exp = {n: ExpectedSample(n, sample_id_for(n)) for n in names}
        records = 0
        for rec in vf:
            records += 1
            if rec.contig not in contigs:
                contigs.append(rec.contig)  # undeclared contig: order of appearance
            alleles = list(rec.alleles)
            base = {
                "contig": rec.contig,
                "rsid": rec.id,
                "qual": rec.qual,
                "filters": sorted(set(rec.filter.keys())) or None,  # a set in Hail
                "alleles": alleles,
            }
            # pysam: PASS -> ['PASS'], '.' -> []
            base.update(info_values(rec, infos))
            ref_block = is_reference_block_record(rec)
            spanning = is_spanning_deletion_only(rec)
            kept = kept_alt_indices(rec)
            for name in names:
                es = exp[name]
                s = rec.samples[name]
                gt = _gt_of(s)
                fmt = format_values(s, fmts)
                if isinstance(fmt.get("fmt_pgt"), str):
                    fmt["fmt_pgt"] = call_text(fmt["fmt_pgt"])
                common = {"sample_id": es.sample_id, "sample_name": name, **base, **fmt,
                          "gt_phased": _phased(s, gt)}
                if ref_block:
                    es.reference_block_records += 1
                    es.reference_blocks.append(_ref_block_row(rec, common, gt, end=rec.stop))
                    continue
                if spanning:
                    es.spanning_deletion_records += 1
                    continue
                if multi and gt_fully_hom_ref(gt):
                    es.reference_block_records += 1
                    es.reference_blocks.append(
                        _ref_block_row(rec, common, gt, end=rec.pos + len(rec.ref) - 1))
                    continue
                es.variant_records += 1
                for i in kept:
                    es.variants.append(_variant_row(rec, common, s, gt, i, fmts))
    for es in exp.values():
        es.variants.sort(key=lambda r: (contigs.index(r["contig"]), r["pos"]))
        es.reference_blocks.sort(key=lambda r: (contigs.index(r["contig"]), r["pos"]))
    return Expected(str(path), records, contigs, infos, fmts, exp, multi)


def _ref_block_row(rec, common: dict, gt, end: int) -> dict:
    row = dict(common)
    row.update({
        "pos": rec.pos, "end": end, "ref": rec.ref, "alt": None,
        "allele_index": 0,
        "gt": None if gt is None else list(gt),
    })
    return row


def _variant_row(rec, common: dict, s, gt, i: int, fmts: list[FieldSpec]) -> dict:
    alleles = list(rec.alleles)
    pos, ref, alt = min_rep(rec.pos, rec.ref, alleles[i])
    split = len(alleles) != 2
    row = dict(common)
    row.update({
        "pos": pos, "end": pos + len(ref) - 1, "ref": ref, "alt": alt,
        "variant_id": f"{rec.contig}:{pos}:{ref}:{alt}",
        "allele_index": i, "was_split": split,
    })
    fmt_keys = {f.key for f in fmts}
    if not split:
        row["gt"] = None if gt is None else list(gt)
        row["gt_unsplit"] = None
        for key in UNSPLIT_FORMAT_KEYS:
            if key in fmt_keys:
                row[f"fmt_{key.lower()}_unsplit"] = None
        return row
    row["gt"] = downcode_alleles(gt, i, bool(common["gt_phased"]))
    row["gt_unsplit"] = None if gt is None else list(gt)
    n_alleles = len(alleles)
    if "AD" in fmt_keys:
        row["fmt_ad_unsplit"] = common["fmt_ad"]
        row["fmt_ad"] = split_ad(common["fmt_ad"], i, n_alleles)
    pl_new = None
    if "PL" in fmt_keys:
        row["fmt_pl_unsplit"] = common["fmt_pl"]
        pl_new = split_pl(common["fmt_pl"], i, gt, n_alleles)
        row["fmt_pl"] = pl_new
    if "GQ" in fmt_keys:
        row["fmt_gq_unsplit"] = common["fmt_gq"]
        if pl_new is not None:
            row["fmt_gq"] = gq_from_pl(pl_new)
    if "PGT" in fmt_keys:
        row["fmt_pgt_unsplit"] = common["fmt_pgt"]
        row["fmt_pgt"] = call_text(common["fmt_pgt"], i)
    return row


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------

def _norm_list(v):
    """A list of only nulls and a null are the same thing for a lone '.' (the spec does not say
    which of the two a lone '.' becomes)."""
    if isinstance(v, (list, tuple)):
        if len(v) > 0 and all(x is None for x in v):
            return None
        return list(v)
    return v


def values_equal(expected: Any, actual: Any) -> bool:
    if expected is UNSPECIFIED:
        return True
    expected, actual = _norm_list(expected), _norm_list(actual)
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(expected) != len(actual):
            return False
        return all(values_equal(e, a) for e, a in zip(expected, actual))
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, float) or isinstance(actual, float):
        if not isinstance(actual, (int, float)) or not isinstance(expected, (int, float)):
            return False
        if math.isnan(expected) or math.isnan(actual):
            return math.isnan(expected) and math.isnan(actual)
        return math.isclose(expected, actual, rel_tol=1e-6, abs_tol=1e-9)
    return expected == actual


def row_key(row: dict) -> tuple:
    return (row["contig"], row["pos"], row["ref"], row.get("alt") or "", row.get("allele_index") or 0,
            tuple(row.get("alleles") or ()))


def diff_rows(expected: list[dict], actual: list[dict], label: str, limit: int = 25) -> list[str]:
    """Human-readable differences between expected and actual rows (matched by key)."""
    problems: list[str] = []
    if len(expected) != len(actual):
        problems.append(f"{label}: expected {len(expected)} rows, got {len(actual)}")
    exp_by = {}
    for r in expected:
        exp_by.setdefault(row_key(r), []).append(r)
    act_by = {}
    for r in actual:
        act_by.setdefault(row_key(r), []).append(r)
    for k in exp_by.keys() - act_by.keys():
        problems.append(f"{label}: missing row {k}")
    for k in act_by.keys() - exp_by.keys():
        problems.append(f"{label}: unexpected row {k}")
    for k in exp_by.keys() & act_by.keys():
        for e, a in zip(exp_by[k], act_by[k]):
            for col, ev in e.items():
                if col not in a:
                    problems.append(f"{label} {k}: column {col} missing")
                    continue
                if not values_equal(ev, a[col]):
                    problems.append(f"{label} {k}: {col} expected {ev!r}, got {a[col]!r}")
        if len(exp_by[k]) != len(act_by[k]):
            problems.append(f"{label} {k}: expected {len(exp_by[k])} rows, got {len(act_by[k])}")
    # de-duplicate "column missing" floods
    seen, out = set(), []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out[:limit] + ([f"... and {len(out) - limit} more"] if len(out) > limit else [])
