"""Decode one batch of VCF body lines into typed, record-level columns.

INFO is split into key/value pairs once per batch; each declared key becomes a typed column by
grouping the pairs on their dictionary code. FORMAT keys are located through the handful of
distinct FORMAT strings a file has, so sample values are picked out by offset arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from genolake_assets.lib.vcf.calls import canonical_call_strings, canonical_calls, sorted_filters
from genolake_assets.lib.vcf.fields import (
    ValueTypeError,
    absent,
    distinct_pairs,
    first_row_with,
    list_offsets,
    list_parents,
    list_values,
    null_dots,
    repetitive,
    take_or_nulls,
    typed_at,
    typed_values,
)
from genolake_assets.lib.vcf.header import FieldDef, VcfHeader

_GT_SEPARATOR = r"[/|]"


class BatchDecodeError(ValueError):
    """A bad value in a batch; ``row`` is the record's index within the batch."""

    def __init__(self, row: int, field: str, problem: str):
        self.row, self.field, self.problem = row, field, problem
        super().__init__(f"{field}: {problem}")


@dataclass
class SampleColumns:
    gt: pa.ListArray | None  # list<int16>, null when the sample has no GT
    gt_phased: pa.BooleanArray | None
    fields: dict[str, pa.Array]  # FORMAT column name -> typed array (GT excluded)

    def take(self, indices: pa.Array) -> SampleColumns:
        return SampleColumns(
            gt=None if self.gt is None else self.gt.take(indices),
            gt_phased=None if self.gt_phased is None else self.gt_phased.take(indices),
            fields={name: take_or_nulls(values, indices) for name, values in self.fields.items()},
        )


@dataclass
class RecordBatch:
    """Record-level columns of one batch (before multi-allelic splitting)."""

    length: int
    chrom: pa.Array
    pos: pa.Array
    rsid: pa.Array
    ref: pa.Array
    alt: pa.Array
    qual: pa.Array
    filters: pa.Array
    info: dict[str, pa.Array]
    info_undeclared: pa.Array
    samples: dict[str, SampleColumns]


def _typed(values: pa.Array, fdef: FieldDef, rows: np.ndarray | None = None, length: int = 0) -> pa.Array:
    """Typed column for ``fdef``; with ``rows``, ``values`` are compact and spread to ``length``."""
    try:
        if rows is None:
            return typed_values(values, fdef)
        return typed_at(values, rows, length, fdef)
    except ValueTypeError as exc:
        if rows is not None:
            exc.row = int(rows[exc.row])
        raise BatchDecodeError(exc.row, f"{fdef.section}/{fdef.id}",
                               f"value {exc.value!r} is not a valid {exc.expected} as the header declares "
                               f"(Number={fdef.number})") from None


def oversized_allele(batch: pa.RecordBatch, limit: int) -> tuple[int, str, int] | None:
    """(row, "REF" or "ALT", bytes) of the first allele in ``batch`` longer than ``limit`` bytes, else None.

    Run on the parsed text before anything is decoded, so no Arrow array is built from an allele beyond the
    limit; only the lengths are computed (one integer per record), and only a record whose whole ALT field is
    over the limit has its alleles measured one by one."""
    found: list[tuple[int, str, int]] = []
    for name in ("REF", "ALT"):
        lengths = pc.binary_length(batch.column(name))
        # One Arrow max per batch; the rows are looked for only when an allele is over the limit.
        if (pc.max(lengths).as_py() or 0) <= limit:
            continue
        for row in np.flatnonzero(lengths.to_numpy(zero_copy_only=False) > limit):
            longest = int(lengths[row])
            if name == "ALT":
                longest = max(len(allele.encode()) for allele in batch.column(name)[int(row)].as_py().split(","))
            if longest > limit:
                found.append((int(row), name, longest))
                break
    return min(found) if found else None


def _cast_core(values: pa.Array, target: pa.DataType, field: str) -> pa.Array:
    try:
        return pc.cast(values, target)
    except pa.ArrowInvalid:
        for row, value in enumerate(values.to_pylist()):
            try:
                pc.cast(pa.array([value]), target)
            except pa.ArrowInvalid:
                raise BatchDecodeError(row, field, f"value {value!r} is not a valid {target}") from None
        raise


def _info_pairs(info: pa.Array, length: int) -> tuple[pa.Array, np.ndarray]:
    """Every 'KEY=value' or 'FLAG' entry of the batch, and the record each belongs to."""
    info = null_dots(info)
    if info.null_count == 0 and not pc.any(pc.match_substring(info, ";")).as_py():
        return info, np.arange(length)  # one entry per record, as in a gVCF's 'END=n' blocks
    pairs = pc.split_pattern(info, ";")
    return list_values(pairs), list_parents(pairs)


def _keys_and_values(pairs: pa.Array) -> tuple[np.ndarray, list[str], pa.Array]:
    """(key code of each entry, key names, value strings: null for a Flag, which has no '=')."""
    if len(pairs):
        only_key = _the_only_key(pairs)
        if only_key is not None:
            values = pc.utf8_slice_codeunits(pairs, len(only_key) + 1)
            return np.zeros(len(pairs), np.int32), [only_key], values
    key_value = pc.split_pattern(pairs, "=", max_splits=1)
    kv_offsets = list_offsets(key_value)
    kv_values = list_values(key_value)
    has_value = np.diff(kv_offsets) > 1
    keys = pc.dictionary_encode(kv_values.take(pa.array(kv_offsets[:-1])))
    value_slots = np.where(has_value, kv_offsets[:-1] + 1, -1)
    values = kv_values.take(pa.array(value_slots, mask=~has_value))
    return keys.indices.to_numpy(), keys.dictionary.to_pylist(), values


def _the_only_key(pairs: pa.Array) -> str | None:
    """The key, when every entry is 'KEY=value' with the same KEY (a gVCF's reference blocks: END)."""
    first = pairs[0].as_py()
    if "=" not in first:
        return None
    key = first.split("=", 1)[0]
    return key if pc.all(pc.starts_with(pairs, key + "=")).as_py() else None


def decode_info(info: pa.Array, header: VcfHeader, length: int) -> tuple[dict[str, pa.Array], pa.Array]:
    flat_pairs, parents = _info_pairs(info, length)
    codes, names, values = _keys_and_values(flat_pairs)
    columns: dict[str, pa.Array] = {}
    undeclared_codes = []
    for code, name in enumerate(names):
        fdef = header.info.get(name)
        if fdef is None:
            if name:
                undeclared_codes.append(code)
            continue
        where = np.flatnonzero(codes == code)
        rows = parents[where]
        if len(rows) > 1 and np.any(rows[1:] == rows[:-1]):
            row = int(rows[1:][rows[1:] == rows[:-1]][0])
            raise BatchDecodeError(row, f"INFO/{name}", f"key {name!r} appears twice in one record")
        picked = values if len(where) == len(values) else values.take(pa.array(where))
        if fdef.type == "Flag":
            picked = pa.array(np.zeros(len(where), dtype=np.int8)).cast(pa.string())
        columns[fdef.column] = _typed(picked, fdef, rows, length)
    for fdef in header.info.values():
        if fdef.column not in columns:
            columns[fdef.column] = absent(fdef, length)
    return columns, _undeclared(flat_pairs, parents, codes, undeclared_codes, length)


def _undeclared(flat: pa.Array, parents: np.ndarray, codes: np.ndarray, wanted: list[int], length: int) -> pa.Array:
    """Keys missing from the header are kept verbatim ('K=V;K2=V2') so nothing is lost."""
    if not wanted:
        return pa.nulls(length, pa.string())
    where = np.flatnonzero(np.isin(codes, wanted))
    rows = parents[where]
    counts = np.bincount(rows, minlength=length)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    lists = pa.ListArray.from_arrays(pa.array(offsets), flat.take(pa.array(where)))
    joined = pc.binary_join(lists, ";")
    return pc.if_else(pc.greater(pa.array(counts), 0), joined, pa.scalar(None, pa.string()))


def decode_genotype(gt: pa.Array) -> tuple[pa.ListArray, pa.BooleanArray]:
    """GT strings → allele-index lists; parsed once per distinct GT string (there are few)."""
    encoded = pc.dictionary_encode(gt)
    try:
        alleles, phased = _parse_genotypes(encoded.dictionary)
    except _GenotypeError as exc:
        bad = encoded.dictionary[exc.dictionary_row]
        row = int(np.flatnonzero(pc.equal(gt, bad).to_numpy(zero_copy_only=False))[0])
        raise BatchDecodeError(row, "FORMAT/GT", f"genotype allele {exc.value!r} is not an allele index") from None
    return alleles.take(encoded.indices), phased.take(encoded.indices)


def _parse_genotypes(gt: pa.Array) -> tuple[pa.ListArray, pa.BooleanArray]:
    gt = pc.if_else(pc.equal(gt, ""), pa.scalar(None, pa.string()), gt)
    phased = pc.match_substring(gt, "|")
    alleles = pc.split_pattern_regex(gt, _GT_SEPARATOR)
    flat = null_dots(list_values(alleles))
    try:
        indices = pc.cast(flat, pa.int16())
    except pa.ArrowInvalid:
        parents = list_parents(alleles)
        for index, value in enumerate(flat.to_pylist()):
            if value is not None and not value.isdigit():
                raise _GenotypeError(int(parents[index]), value) from None
        raise
    offsets = pa.array(list_offsets(alleles), pa.int32())
    return pa.ListArray.from_arrays(offsets, indices, mask=pc.is_null(alleles)), phased


class _GenotypeError(ValueError):
    def __init__(self, dictionary_row: int, value: str):
        self.dictionary_row, self.value = dictionary_row, value
        super().__init__(value)


def decode_sample(fmt: pa.Array, sample: pa.Array, header: VcfHeader, length: int) -> SampleColumns:
    """Pick each FORMAT key's value for one sample column.

    A gVCF's reference blocks repeat a few thousand distinct (FORMAT, sample) strings over
    millions of records: then each distinct pair is decoded once and the results spread by take.
    """
    if not repetitive(sample):
        return _decode_sample_values(fmt, sample, header, length)
    indices, distinct_fmt, distinct_sample = distinct_pairs(fmt, sample)
    try:
        columns = _decode_sample_values(distinct_fmt, distinct_sample, header, len(distinct_sample))
    except BatchDecodeError as exc:
        exc.row = first_row_with(indices, exc.row)
        raise
    return columns.take(indices)


def _decode_sample_values(fmt: pa.Array, sample: pa.Array, header: VcfHeader, length: int) -> SampleColumns:
    fmt_dict = pc.dictionary_encode(fmt)
    fmt_codes = fmt_dict.indices.to_numpy(zero_copy_only=False)
    values = pc.split_pattern(sample, ":")
    value_offsets = list_offsets(values)
    value_counts = np.diff(value_offsets)
    flat_values = list_values(values)
    positions: dict[str, list[tuple[np.ndarray, int]]] = {}
    for code, fmt_string in enumerate(fmt_dict.dictionary.to_pylist()):
        rows = np.flatnonzero(fmt_codes == code)
        keys = [] if fmt_string in (None, ".", "") else fmt_string.split(":")
        if len(set(keys)) != len(keys):
            raise BatchDecodeError(int(rows[0]), "FORMAT", f"FORMAT {fmt_string!r} repeats a key")
        too_many = value_counts[rows] > max(len(keys), 1)
        if np.any(too_many):
            raise BatchDecodeError(int(rows[too_many][0]), "FORMAT",
                                   f"the sample has more values than the FORMAT keys {fmt_string!r}")
        for position, key in enumerate(keys):
            if key != "GT" and key not in header.format:
                raise BatchDecodeError(int(rows[0]), f"FORMAT/{key}", f"FORMAT key {key!r} is not declared "
                                       "in the header")
            positions.setdefault(key, []).append((rows, position))
    fields: dict[str, pa.Array] = {}
    gt = phased = None
    for key, placements in positions.items():
        take = np.full(length, -1, dtype=np.int64)
        for rows, position in placements:
            present = value_counts[rows] > position
            take[rows[present]] = value_offsets[rows[present]] + position
        if key == "GT":
            gt, phased = canonical_calls(*decode_genotype(flat_values.take(pa.array(take, mask=take < 0))))
            continue
        rows = np.flatnonzero(take >= 0)
        compact = flat_values.take(pa.array(take[rows])) if len(rows) < length else flat_values.take(pa.array(take))
        fdef = header.format[key]
        fields[fdef.column] = _typed(compact, fdef, rows, length)
        if key == "PGT" and fdef.type == "String" and not fdef.is_list:  # a call held as text
            fields[fdef.column] = canonical_call_strings(fields[fdef.column])
    for key, fdef in header.format.items():
        if key != "GT" and fdef.column not in fields:
            fields[fdef.column] = absent(fdef, length)
    return SampleColumns(gt=gt, gt_phased=phased, fields=fields)


def decode_batch(batch: pa.RecordBatch, header: VcfHeader, sample_names: list[str]) -> RecordBatch:
    length = batch.num_rows
    column = batch.column
    filters = sorted_filters(pc.split_pattern(null_dots(column("FILTER")), ";"))
    info, undeclared = decode_info(column("INFO"), header, length)
    samples = {}
    if sample_names:
        fmt = column("FORMAT")
        for name in sample_names:
            samples[name] = decode_sample(fmt, column(name), header, length)
    return RecordBatch(
        length=length,
        chrom=column("#CHROM"),
        pos=_cast_core(column("POS"), pa.int32(), "POS"),
        rsid=null_dots(column("ID")),
        ref=column("REF"),
        alt=column("ALT"),
        qual=_cast_core(null_dots(column("QUAL")), pa.float64(), "QUAL"),
        filters=filters,
        info=info,
        info_undeclared=undeclared,
        samples=samples,
    )
