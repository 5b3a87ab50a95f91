"""The lookup's result table, built column-wise: one row per (marker, sample), or per carried allele.

Rows read from the cohort table are matched to markers in one pass (each row's interval, [pos, pos]
for a variant and [pos, end] for a reference block, against the sorted marker loci), then every
(marker, sample) cell is decided with array operations; status semantics are in lib/cohort/lookup.py's
module docstring.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from genolake_assets.lib.cohort.markers import (
    HOM_REF,
    NO_CALL,
    OTHER_ALLELE,
    REFERENCE_BLOCK_KIND,
    RESULT_SCHEMA,
    VARIANT,
    Marker,
)

_STATUSES = pa.array([VARIANT, OTHER_ALLELE, HOM_REF, NO_CALL], pa.string())
_S_VARIANT, _S_OTHER, _S_HOM_REF, _S_NO_CALL = range(4)
_FROM_MARKER, _FROM_ROW, _FROM_NOTHING = range(3)
_NONE = np.iinfo(np.int64).max


def _codes(column: pa.ChunkedArray | pa.Array, values: pa.Array) -> np.ndarray:
    """Index of each element in ``values``: -1 if absent, -2 if null (dictionary columns stay encoded)."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    out = []
    for chunk in chunks:
        if pa.types.is_dictionary(chunk.type):
            mapping = pc.fill_null(pc.index_in(chunk.dictionary, value_set=values), -1).to_numpy()
            codes = np.append(mapping, -2)[pc.fill_null(chunk.indices, -1).to_numpy(zero_copy_only=False)]
        else:
            codes = pc.fill_null(pc.index_in(chunk, value_set=values), -1).to_numpy(zero_copy_only=False)
            if chunk.null_count:
                codes = np.where(chunk.is_null().to_numpy(zero_copy_only=False), -2, codes)
        out.append(codes.astype(np.int64, copy=False))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def _ints(column: pa.ChunkedArray | pa.Array, null: int) -> np.ndarray:
    return pc.fill_null(column, null).to_numpy().astype(np.int64, copy=False)


def _plain(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A column as one plain (not dictionary-encoded) array."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    return column


def _expand(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The concatenation of ``range(start, start + count)`` for each pair."""
    total = int(counts.sum())
    ends = np.cumsum(counts)
    return np.repeat(starts - (ends - counts), counts) + np.arange(total, dtype=np.int64)


def _first(mask: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per group (``starts`` of consecutive groups), the index of its first element where ``mask``."""
    return np.minimum.reduceat(np.where(mask, np.arange(len(mask), dtype=np.int64), _NONE), starts)


def result_table(located: list[tuple[Marker, str]], samples: pa.Array, rows: pa.Table | None) -> pa.Table:
    n_markers, n_samples = len(located), len(samples)
    cells = n_markers * n_samples
    marker_contigs = list(dict.fromkeys(contig for _, contig in located))
    contig_code = {contig: i for i, contig in enumerate(marker_contigs)}
    m_pos = np.array([marker.pos for marker, _ in located], np.int64)
    m_key = np.array([contig_code[contig] for _, contig in located], np.int64) * (1 << 32) + m_pos
    m_ref = pa.array([marker.ref for marker, _ in located], pa.string())
    m_alt = pa.array([marker.alt for marker, _ in located], pa.string())
    m_has_alt = np.array([marker.alt is not None for marker, _ in located], bool)

    # Each row's covered marker loci: a range [lo, hi) of the sorted distinct loci.
    covered = np.zeros(0, np.int64)
    if rows is not None and rows.num_rows and cells:
        loci, locus_of_marker = np.unique(m_key, return_inverse=True)
        row_contig = _codes(rows["contig"], pa.array(marker_contigs, pa.string()))
        row_sample = _codes(rows["sample_id"], samples)
        row_kind = _codes(rows["kind"], pa.array([REFERENCE_BLOCK_KIND], pa.string()))
        row_pos = _ints(rows["pos"], -1)
        row_end = _ints(rows["end"], -1)
        block = row_kind == 0
        valid = ((row_contig >= 0) & (row_sample >= 0) & (row_kind != -2) & pc.is_valid(rows["pos"]).to_numpy()
                 & (~block | pc.is_valid(rows["end"]).to_numpy()))
        base = row_contig * (1 << 32)
        lo = np.searchsorted(loci, base + row_pos, side="left")
        hi = np.searchsorted(loci, base + np.where(block, row_end, row_pos), side="right")
        counts = np.where(valid, np.maximum(hi - lo, 0), 0)
        covered = np.flatnonzero(counts)
    if len(covered) == 0:
        return _assemble(located, samples, m_ref, m_alt, m_pos, np.ones(cells, np.int64), None, {}, None)

    # The covered rows, ordered as the per-sample rules read them: by sample, then alt (nulls last).
    sub_sample = row_sample[covered]
    alt = _plain(rows["alt"].take(pa.array(covered)))
    if alt.null_count == len(alt):  # reference blocks only: by sample (a stable sort keeps the read order)
        order = np.argsort(sub_sample, kind="stable")
    else:
        order = pc.sort_indices(pa.table({"s": sub_sample, "alt": alt}),
                                sort_keys=[("s", "ascending"), ("alt", "ascending")]).to_numpy()
    covered, sub_sample, alt = covered[order], sub_sample[order], alt.take(pa.array(order))
    lo, counts = lo[covered], counts[covered]
    sub = rows.take(pa.array(covered))
    ref = _plain(sub["ref"])
    gt = _plain(sub["gt"])
    gt_phased = _plain(sub["gt_phased"])
    r_block = block[covered]
    r_pos = row_pos[covered]
    n_rows = len(covered)

    # Per row: carries an alt allele, is all-reference, has no GT.
    lengths = pc.fill_null(pc.list_value_length(gt), 0).to_numpy()
    parents = pc.list_parent_indices(gt).to_numpy()
    alleles = pc.list_flatten(gt)
    positive = pc.fill_null(pc.greater(alleles, 0), False).to_numpy(zero_copy_only=False)
    zero = pc.fill_null(pc.equal(alleles, 0), False).to_numpy(zero_copy_only=False)
    r_carries = np.bincount(parents, weights=positive, minlength=n_rows) > 0
    r_all_ref = (lengths > 0) & (np.bincount(parents, weights=zero, minlength=n_rows) == lengths)
    r_gt_null = gt.is_null().to_numpy(zero_copy_only=False)

    # Pairs (marker, covered row) ordered by marker, sample, then the rows' order.
    pair_row = np.repeat(np.arange(n_rows, dtype=np.int64), counts)
    pair_locus = _expand(lo, counts)
    by_locus = np.argsort(pair_locus, kind="stable")
    pair_row, pair_locus = pair_row[by_locus], pair_locus[by_locus]
    locus_ids = np.arange(len(loci))
    seg_start = np.searchsorted(pair_locus, locus_ids, side="left")
    seg_len = np.searchsorted(pair_locus, locus_ids, side="right") - seg_start
    per_marker = seg_len[locus_of_marker]
    p_marker = np.repeat(np.arange(n_markers, dtype=np.int64), per_marker)
    p_row = pair_row[_expand(seg_start[locus_of_marker], per_marker)]
    p_cell = p_marker * n_samples + sub_sample[p_row]

    # Allele match of a pair: the row's (ref, alt) is the marker's.
    is_variant = ~r_block[p_row]
    carried = is_variant & r_carries[p_row]
    has_alt = m_has_alt[p_marker]
    asked = np.zeros(len(p_row), bool)
    if m_has_alt.any():
        alleles = pa.array(sorted({a for a in m_ref.to_pylist() + m_alt.to_pylist() if a is not None}), pa.string())
        marker_ref_code = np.where((code := _codes(m_ref, alleles)) >= 0, code, -3)
        marker_alt_code = np.where((code := _codes(m_alt, alleles)) >= 0, code, -3)
        asked = (carried & has_alt & (_codes(ref, alleles)[p_row] == marker_ref_code[p_marker])
                 & (_codes(alt, alleles)[p_row] == marker_alt_code[p_marker]))

    starts = np.flatnonzero(np.r_[True, p_cell[1:] != p_cell[:-1]])
    group = np.cumsum(np.r_[True, p_cell[1:] != p_cell[:-1]]) - 1
    g_cell = p_cell[starts]
    g_marker = p_marker[starts]
    n_asked = np.add.reduceat(asked.astype(np.int64), starts)
    n_carried = np.add.reduceat(carried.astype(np.int64), starts)
    n_variant = np.add.reduceat(is_variant.astype(np.int64), starts)
    mode_asked = m_has_alt[g_marker] & (n_asked > 0)
    mode_carried = ~mode_asked & (n_carried > 0)
    single = ~mode_asked & ~mode_carried

    out_counts = np.ones(cells, np.int64)
    out_counts[g_cell] = np.where(mode_asked, n_asked, np.where(mode_carried, n_carried, 1))
    offsets = np.cumsum(out_counts) - out_counts
    total = int(out_counts.sum())
    o_row = np.full(total, -1, np.int64)
    o_status = np.full(total, _S_NO_CALL, np.int64)
    o_ref = np.full(total, _FROM_MARKER, np.int64)
    o_alt = np.full(total, _FROM_MARKER, np.int64)

    # Carried alleles: one output row each (all asked ones, or all carried ones).
    chosen = np.flatnonzero((asked & mode_asked[group]) | (carried & mode_carried[group]))
    chosen_group = group[chosen]
    at = offsets[g_cell[chosen_group]] + (np.arange(len(chosen)) - np.searchsorted(chosen_group, chosen_group))
    o_row[at] = p_row[chosen]
    o_status[at] = np.where(mode_asked[chosen_group] | ~m_has_alt[g_marker[chosen_group]], _S_VARIANT, _S_OTHER)
    o_ref[at] = _FROM_ROW
    o_alt[at] = _FROM_ROW

    # Nothing carried: the first all-reference variant row, else the first variant row, else the first block.
    first_variant = _first(is_variant, starts)
    first_reference = _first(is_variant & r_all_ref[p_row], starts)
    first_block = _first(~is_variant, starts)
    pick = np.where(n_variant > 0, np.where(first_reference != _NONE, first_reference, first_variant), first_block)
    singles = np.flatnonzero(single)
    pair = pick[singles]
    row = p_row[pair]
    g_m = g_marker[singles]
    variant_row = is_variant[pair]
    at = offsets[g_cell[singles]]
    o_row[at] = row
    o_status[at] = np.where(r_all_ref[row] | (~variant_row & r_gt_null[row]), _S_HOM_REF, _S_NO_CALL)
    ref_falsy = np.array([not marker.ref for marker, _ in located], bool)
    ref_none = np.array([marker.ref is None for marker, _ in located], bool)
    o_ref[at] = np.where(variant_row, np.where(ref_falsy[g_m], _FROM_ROW, _FROM_MARKER),
                         np.where(~ref_none[g_m], _FROM_MARKER,
                                  np.where(r_pos[row] == m_pos[g_m], _FROM_ROW, _FROM_NOTHING)))

    return _assemble(located, samples, m_ref, m_alt, m_pos, out_counts, o_row,
                     {"ref": (ref, o_ref), "alt": (alt, o_alt)}, (sub, gt, gt_phased, r_block, o_status))


def _assemble(located, samples, m_ref, m_alt, m_pos, out_counts, o_row, alleles, rows_part) -> pa.Table:
    n_samples = len(samples)
    cell = np.repeat(np.arange(len(out_counts), dtype=np.int64), out_counts)
    o_marker = cell // max(n_samples, 1)
    o_sample = cell - o_marker * n_samples
    marker_text = pa.array([str(marker) for marker, _ in located], pa.string())
    contig_text = pa.array([contig for _, contig in located], pa.string())
    marker_index = pa.array(o_marker)
    columns = {
        "marker": marker_text.take(marker_index),
        "contig": contig_text.take(marker_index),
        "pos": pa.array(m_pos[o_marker].astype(np.int32), pa.int32()),
        "sample_id": samples.take(pa.array(o_sample)),
    }
    if rows_part is None:  # nothing covers any marker: every cell is a no-call
        columns["status"] = _STATUSES.take(pa.array(np.full(len(cell), _S_NO_CALL, np.int64)))
        columns["ref"] = m_ref.take(marker_index)
        columns["alt"] = m_alt.take(marker_index)
        for name in ("genotype", "gt", "gq", "dp"):
            columns[name] = pa.nulls(len(cell), RESULT_SCHEMA.field(name).type)
        return pa.Table.from_arrays([columns[name] for name in RESULT_SCHEMA.names], schema=RESULT_SCHEMA)

    sub, gt, gt_phased, r_block, o_status = rows_part
    n_rows = sub.num_rows
    columns["status"] = _STATUSES.take(pa.array(o_status))
    for name, (values, source) in alleles.items():
        marker_values = m_ref if name == "ref" else m_alt
        index = np.where(source == _FROM_ROW, o_row,
                         np.where(source == _FROM_MARKER, n_rows + o_marker, n_rows + len(located)))
        combined = pa.concat_arrays([values.cast(pa.string()), marker_values, pa.nulls(1, pa.string())])
        columns[name] = combined.take(pa.array(index))
    row_index = pa.array(np.where(o_row >= 0, o_row, n_rows))

    def from_rows(values: pa.Array, type_: pa.DataType) -> pa.Array:
        return pa.concat_arrays([values.cast(type_), pa.nulls(1, type_)]).take(row_index)

    columns["genotype"] = from_rows(_genotypes(gt, gt_phased, r_block), pa.string())
    columns["gt"] = from_rows(gt, RESULT_SCHEMA.field("gt").type)
    columns["gq"] = from_rows(_plain(sub["gq"]), pa.int32())
    columns["dp"] = from_rows(_plain(sub["dp"]), pa.int32())
    return pa.Table.from_arrays([columns[name] for name in RESULT_SCHEMA.names], schema=RESULT_SCHEMA)


def _genotypes(gt: pa.Array, gt_phased: pa.Array, block: np.ndarray) -> pa.Array:
    """``0/1``, ``1|0``, ``./.`` per row; a reference block without GT still asserts ``0/0``."""
    texts = pc.fill_null(pc.cast(gt.values, pa.string()), ".")
    as_text = pa.ListArray.from_arrays(gt.offsets, texts, mask=gt.is_null())
    separator = pc.if_else(pc.fill_null(gt_phased, False), "|", "/")
    joined = pc.binary_join(as_text, separator)
    return pc.if_else(pa.array(block & gt.is_null().to_numpy(zero_copy_only=False)), "0/0", joined)
