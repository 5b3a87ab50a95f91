"""Genotype calls and FILTER lists as Hail holds them, so both engines write the same values.

Hail is the reference implementation of the table (DESIGN §4): it keeps a call only when every allele
is called (``0/.`` and ``./.`` are a missing call), stores an unphased call's alleles in ascending
order (``1/0`` is ``0/1``) and holds FILTER as a set (sorted, without repeats).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from genolake_assets.lib.vcf.fields import list_offsets, list_parents, list_values


def canonical_calls(gt: pa.ListArray, phased: pa.BooleanArray) -> tuple[pa.ListArray, pa.BooleanArray]:
    """Null (with a null phase) for a call with a missing allele; unphased alleles sorted."""
    values = list_values(gt)
    length = len(gt)
    parents = list_parents(gt)
    offsets = list_offsets(gt)
    missing = values.is_null().to_numpy(zero_copy_only=False)
    has_missing = np.bincount(parents[missing], minlength=length) > 0 if missing.any() else np.zeros(length, bool)
    valid = gt.is_valid().to_numpy(zero_copy_only=False) & ~has_missing & (np.diff(offsets) > 0)
    unphased = ~phased.fill_null(False).to_numpy(zero_copy_only=False)
    alleles = values.fill_null(0).to_numpy().astype(np.int16).copy()
    lengths = np.diff(offsets)
    diploid = np.flatnonzero(valid & unphased & (lengths == 2))
    first, second = offsets[diploid], offsets[diploid] + 1
    swap = alleles[first] > alleles[second]
    alleles[first[swap]], alleles[second[swap]] = alleles[second[swap]], alleles[first[swap]]
    for row in np.flatnonzero(valid & unphased & (lengths > 2)):
        alleles[offsets[row]:offsets[row + 1]].sort()
    calls = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(alleles, pa.int16()),
                                     mask=pa.array(~valid))
    return calls, pc.if_else(pa.array(valid), phased, pa.scalar(None, pa.bool_()))


def _canonical_call_text(call: str) -> str | None:
    separator = "|" if "|" in call else "/"
    alleles = call.replace("|", "/").split("/")
    if "." in alleles or "" in alleles:
        return None
    if separator == "/":
        alleles = sorted(alleles, key=int)
    return separator.join(alleles)


def canonical_call_strings(values: pa.Array) -> pa.Array:
    """The same for a call held as text (PGT): ``0|.`` → null, ``1/0`` → ``0/1``."""
    encoded = pc.dictionary_encode(values)
    texts = [None if t is None else _canonical_call_text(t) for t in encoded.dictionary.to_pylist()]
    return pa.array(texts, pa.string()).take(encoded.indices)


def sorted_filters(filters: pa.ListArray) -> pa.ListArray:
    """FILTER lists as sets: sorted, no repeats (only lists of two or more are touched)."""
    lengths = pc.list_value_length(filters).fill_null(0).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(lengths > 1)
    if not len(rows):
        return filters
    out = filters.to_pylist()
    for row in rows:
        out[row] = sorted(set(out[row]))
    return pa.array(out, filters.type)
