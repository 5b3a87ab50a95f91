"""Turn decoded records into one sample's variant rows and reference-block rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from genolake_assets.lib.vcf.conventions import NO_ROW_ALLELES, SPANNING_DELETION, SYMBOLIC_REFERENCE
from genolake_assets.lib.vcf.schema import REFERENCE_BLOCKS, SPLIT_REWRITTEN_FORMAT, VARIANTS
from genolake_assets.lib.vcf.decode import RecordBatch, SampleColumns
from genolake_assets.lib.vcf.fields import distinct_pairs, list_offsets, list_parents, list_values
from genolake_assets.lib.vcf.header import VcfHeader
from genolake_assets.lib.vcf.split import downcode_gt, downcode_gt_string, gq_from_pl, min_rep, split_ad, split_pl



@dataclass
class RowCounts:
    variant_records: int = 0
    variant_rows: int = 0
    reference_block_records: int = 0
    spanning_deletion_records: int = 0

    def add(self, other: RowCounts) -> None:
        self.variant_records += other.variant_records
        self.variant_rows += other.variant_rows
        self.reference_block_records += other.reference_block_records
        self.spanning_deletion_records += other.spanning_deletion_records


@dataclass
class AlleleLayout:
    """Where each ALT allele of a batch sits and what kind it is."""

    record: np.ndarray  # record index of each ALT
    index: np.ndarray  # 1-based ALT index within its record
    real: np.ndarray  # a row-producing ALT (not <NON_REF>, <*>, *, .)
    n_alleles: np.ndarray  # per record: REF + ALTs ('.' does not count)
    real_per_record: np.ndarray
    star_per_record: np.ndarray
    alleles: pa.ListArray  # per record: [REF, ALT...]

    @classmethod
    def of(cls, records: RecordBatch) -> AlleleLayout:
        # ALT strings repeat ('<NON_REF>', 'A,<NON_REF>', ...): split and classify each distinct one once.
        codes = pc.dictionary_encode(records.alt)
        alt_code = codes.indices.to_numpy()
        distinct_alts = pc.split_pattern(codes.dictionary, ",")
        distinct_flat = list_values(distinct_alts)
        distinct_offsets = list_offsets(distinct_alts)
        counts = np.diff(distinct_offsets)[alt_code]
        length = records.length
        record = np.repeat(np.arange(length), counts)
        index = np.arange(len(record)) - (np.cumsum(counts) - counts)[record] + 1
        element = distinct_offsets[:-1][alt_code][record] + index - 1  # each ALT's slot in distinct_flat
        symbolic = pc.is_in(distinct_flat, pa.array(SYMBOLIC_REFERENCE)).to_numpy(zero_copy_only=False)[element]
        star = pc.equal(distinct_flat, SPANNING_DELETION).to_numpy(zero_copy_only=False)[element]
        dot = pc.equal(distinct_flat, ".").to_numpy(zero_copy_only=False)[element]
        real = ~(symbolic | star | dot)
        n_alleles = 1 + np.bincount(record[~dot], minlength=length)
        alleles = record_alleles(records.ref, records.alt)
        return cls(record, index, real, n_alleles, np.bincount(record[real], minlength=length),
                   np.bincount(record[star], minlength=length), alleles)


def has_row_allele(alt: pa.Array) -> np.ndarray:
    """Per record: whether an ALT allele of it makes a variant row (one not in NO_ROW_ALLELES)."""
    codes = pc.dictionary_encode(alt)
    alts = pc.split_pattern(codes.dictionary, ",")
    makes_row = ~pc.is_in(list_values(alts), pa.array(NO_ROW_ALLELES)).to_numpy(zero_copy_only=False)
    per_distinct = np.bincount(list_parents(alts)[makes_row], minlength=len(alts)) > 0
    return per_distinct[codes.indices.to_numpy()]


def record_alleles(ref: pa.Array, alt: pa.Array) -> pa.ListArray:
    """Per record [REF] + ALTs, without the '.' placeholder of a record with no ALT.

    Built once per distinct (REF, ALT) pair when they repeat (a gVCF's blocks have a handful).
    """
    indices, distinct_ref, distinct_alt = distinct_pairs(ref, alt)
    if len(distinct_ref) * 4 < len(ref):
        return _concat_alleles(distinct_ref, distinct_alt).take(indices)
    return _concat_alleles(ref, alt)


def _concat_alleles(ref: pa.Array, alt: pa.Array) -> pa.ListArray:
    alts = pc.split_pattern(alt, ",")
    dot = pc.equal(list_values(alts), ".").to_numpy(zero_copy_only=False)
    alt_flat = list_values(alts).filter(pa.array(~dot))
    alt_record = list_parents(alts)[~dot]
    length = len(ref)
    counts = 1 + np.bincount(alt_record, minlength=length)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    positions = np.empty(offsets[-1], dtype=np.int64)
    ref_slots = offsets[:-1]
    is_ref = np.zeros(offsets[-1], dtype=bool)
    is_ref[ref_slots] = True
    positions[is_ref] = np.arange(length)
    positions[~is_ref] = length + np.arange(len(alt_flat))
    values = pa.concat_arrays([ref, alt_flat]).take(pa.array(positions))
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _calls(sample: SampleColumns, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Per record: (fully called hom-ref, carries a non-ref or missing allele)."""
    if sample.gt is None:
        return np.zeros(length, bool), np.ones(length, bool)
    gt = sample.gt
    values = list_values(gt)
    parents = list_parents(gt)
    missing = values.is_null().to_numpy(zero_copy_only=False)
    nonref = values.fill_null(0).to_numpy() > 0
    has_missing = np.bincount(parents[missing], minlength=length) > 0
    has_nonref = np.bincount(parents[nonref], minlength=length) > 0
    no_gt = ~gt.is_valid().to_numpy(zero_copy_only=False) | (np.diff(list_offsets(gt)) == 0)
    homref = ~(has_missing | has_nonref | no_gt)
    return homref, ~homref


def _variant_id(contig: pa.Array, pos: pa.Array, ref: pa.Array, alt: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(contig, pc.cast(pos, pa.string()), ref, alt, ":")


def _selector(rows: np.ndarray, length: int):
    """A function picking ``rows`` out of a record-level column."""
    if len(rows) == length and (length == 0 or (rows[0] == 0 and np.all(np.diff(rows) == 1))):
        return lambda values: values
    pick = _picker(rows, length)

    def select(values: pa.Array) -> pa.Array:
        # Most INFO/FORMAT columns are null in most batches of a gVCF: skip copying them.
        if values.null_count == len(values):
            return pa.nulls(len(rows), values.type)
        return pick(values)

    return select


def _picker(rows: np.ndarray, length: int):
    if len(rows) * 4 > length and np.all(np.diff(rows) > 0):
        # Filtering by mask is cheaper than take for the common 'most rows' case.
        mask = np.zeros(length, dtype=bool)
        mask[rows] = True
        arrow_mask = pa.array(mask)
        return lambda values: values.filter(arrow_mask)
    indices = pa.array(rows, pa.int64())
    return lambda values: values.take(indices)


def _common(records: RecordBatch, sample: SampleColumns, rows: np.ndarray, ids: tuple[str, str],
            layout: AlleleLayout) -> dict[str, pa.Array]:
    select = _selector(rows, records.length)
    n = len(rows)
    columns: dict[str, pa.Array] = {
        "sample_id": pa.repeat(pa.scalar(ids[0], pa.string()), n),
        "sample_name": pa.repeat(pa.scalar(ids[1], pa.string()), n),
        "contig": select(records.chrom),
        "pos": select(records.pos),
        "ref": select(records.ref),
        "rsid": select(records.rsid),
        "qual": select(records.qual),
        "filters": select(records.filters),
        "alleles": select(layout.alleles),
        "gt": select(sample.gt) if sample.gt is not None else pa.nulls(n, pa.list_(pa.int16())),
        "gt_phased": select(sample.gt_phased) if sample.gt_phased is not None else pa.nulls(n, pa.bool_()),
        "undeclared_info": select(records.info_undeclared),
    }
    columns.update({name: select(values) for name, values in records.info.items()})
    columns.update({name: select(values) for name, values in sample.fields.items()})
    return columns


def reference_block_rows(records: RecordBatch, sample: SampleColumns, rows: np.ndarray, ids: tuple[str, str],
                         layout: AlleleLayout, schema: pa.Schema) -> pa.Table:
    columns = _common(records, sample, rows, ids, layout)
    pos, ref = columns["pos"], columns["ref"]
    span_end = pc.subtract(pc.add(pos, pc.cast(pc.utf8_length(ref), pa.int32())), 1)
    info_end = columns.get("info_end")
    columns.update(
        alt=pa.nulls(len(rows), pa.string()),
        end=pc.coalesce(info_end, span_end) if info_end is not None else span_end,
        allele_index=pa.array(np.zeros(len(rows), np.int16)),
    )
    return pa.Table.from_pydict({f.name: columns[f.name] for f in schema}, schema=schema)


def variant_rows(records: RecordBatch, sample: SampleColumns, allele_slots: np.ndarray, ids: tuple[str, str],
                 layout: AlleleLayout, header: VcfHeader, schema: pa.Schema) -> pa.Table:
    rows = layout.record[allele_slots]
    allele_index = layout.index[allele_slots].astype(np.int16)
    n_alleles = layout.n_alleles[rows]
    was_split = n_alleles > 2
    columns = _common(records, sample, rows, ids, layout)
    take = pa.array(rows, pa.int64())
    pos = columns["pos"].to_numpy().copy()
    ref = columns["ref"].to_pylist() if was_split.any() else None
    alt = pc.split_pattern(records.alt.take(take), ",")
    alt = _pick(alt, allele_index)
    if was_split.any():
        alt_list = alt.to_pylist()
        min_rep(pos, ref, alt_list, np.flatnonzero(was_split))
        ref_array, alt = pa.array(ref, pa.string()), pa.array(alt_list, pa.string())
    else:
        ref_array = columns["ref"]
    pos_array = pa.array(pos, pa.int32())
    columns.update(
        pos=pos_array, ref=ref_array, alt=alt,
        end=pc.subtract(pc.add(pos_array, pc.cast(pc.utf8_length(ref_array), pa.int32())), 1),
        variant_id=_variant_id(columns["contig"], pos_array, ref_array, alt),
        allele_index=pa.array(allele_index), was_split=pa.array(was_split),
    )
    _apply_split(columns, header, allele_index, n_alleles, was_split)
    return pa.Table.from_pydict({f.name: columns[f.name] for f in schema}, schema=schema)


def _pick(lists: pa.ListArray, index_1_based: np.ndarray) -> pa.Array:
    flat = list_values(lists)
    return flat.take(pa.array(list_offsets(lists)[:-1] + index_1_based.astype(np.int64) - 1))


def _apply_split(columns: dict[str, pa.Array], header: VcfHeader, allele_index: np.ndarray,
                 n_alleles: np.ndarray, was_split: np.ndarray) -> None:
    split_mask = pa.array(was_split)
    if "GT" in header.format:
        columns["gt_unsplit"] = pc.if_else(split_mask, columns["gt"], pa.scalar(None, columns["gt"].type))
    for key in SPLIT_REWRITTEN_FORMAT:
        fdef = header.format.get(key)
        if fdef is not None:
            original = columns[fdef.column]
            columns[fdef.column + "_unsplit"] = pc.if_else(split_mask, original, pa.scalar(None, original.type))
    if not was_split.any():
        return
    if "GT" in header.format:
        columns["gt"] = downcode_gt(columns["gt"], allele_index, was_split, columns["gt_phased"])
    ad = header.format.get("AD")
    if ad is not None and ad.is_list and ad.type == "Integer":
        columns["fmt_ad"] = pc.if_else(split_mask, split_ad(columns["fmt_ad"], n_alleles, allele_index),
                                       columns["fmt_ad"])
    pl = header.format.get("PL")
    if pl is not None and pl.is_list and pl.type == "Integer":
        new_pl, usable = split_pl(columns["fmt_pl"], n_alleles, allele_index,
                                  columns["gt"] if "GT" in header.format else None)
        if "GQ" in header.format and header.format["GQ"].type == "Integer" and not header.format["GQ"].is_list:
            columns["fmt_gq"] = pc.if_else(split_mask, gq_from_pl(new_pl, usable, columns["fmt_gq"]),
                                           columns["fmt_gq"])
        columns["fmt_pl"] = pc.if_else(split_mask, new_pl, columns["fmt_pl"])
    pgt = header.format.get("PGT")
    if pgt is not None and not pgt.is_list and pgt.type == "String":
        columns["fmt_pgt"] = downcode_gt_string(columns["fmt_pgt"], allele_index, was_split)


def sample_tables(records: RecordBatch, sample_name: str, sample_id: str, multi_sample: bool, header: VcfHeader,
                  layout: AlleleLayout, table_schemas: dict[str, pa.Schema],
                  name_column: str | None = None) -> tuple[dict[str, pa.Table], RowCounts]:
    """Route one sample's records to variant rows and reference-block rows (docs/variant-table.md).

    ``name_column``: the value of the rows' ``sample_name`` column, when not ``sample_name`` itself."""
    sample = records.samples.get(sample_name) or SampleColumns(gt=None, gt_phased=None, fields={
        f.column: pa.nulls(records.length, table_schemas[VARIANTS].field(f.column).type)
        for key, f in header.format.items() if key != "GT"})
    has_real = layout.real_per_record > 0
    has_star = layout.star_per_record > 0
    if multi_sample:
        homref, carries = _calls(sample, records.length)
        variant_record = has_real & carries
        block_record = (~has_real & ~has_star) | (has_real & homref)
    else:
        variant_record = has_real
        block_record = ~has_real & ~has_star
    spanning_only = ~has_real & has_star
    slots = np.flatnonzero(layout.real & variant_record[layout.record])
    ids = (sample_id, sample_name if name_column is None else name_column)
    tables = {
        VARIANTS: variant_rows(records, sample, slots, ids, layout, header, table_schemas[VARIANTS]),
        REFERENCE_BLOCKS: reference_block_rows(records, sample, np.flatnonzero(block_record), ids, layout,
                                               table_schemas[REFERENCE_BLOCKS]),
    }
    counts = RowCounts(int(variant_record.sum()), len(slots), int(block_record.sum()), int(spanning_only.sum()))
    return tables, counts
