"""Multi-allelic splitting with Hail's ``split_multi_hts`` semantics, vectorised.

See docs/variant-table.md for the rules. Only rows that really were split pay for
the arithmetic; biallelic records pass through untouched.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from genolake_assets.lib.vcf.calls import canonical_call_strings, canonical_calls
from genolake_assets.lib.vcf.fields import list_offsets, list_parents, list_values

GQ_CAP = 99


def downcode_gt(gt: pa.ListArray, allele_index: np.ndarray, was_split: np.ndarray,
                phased: pa.BooleanArray) -> pa.ListArray:
    """Allele ``i`` → 1, other alleles → 0 (split rows only); an unphased result is sorted, as Hail stores it.

    Calls reach here complete or null (:func:`genolake_assets.lib.vcf.calls.canonical_calls`)."""
    values = list_values(gt)
    parents = list_parents(gt)
    raw = values.fill_null(0).to_numpy().astype(np.int16)
    downcoded = (raw == allele_index[parents]).astype(np.int16)
    result = np.where(was_split[parents], downcoded, raw)
    offsets = pa.array(list_offsets(gt), pa.int32())
    return canonical_calls(pa.ListArray.from_arrays(offsets, pa.array(result), mask=pc.is_null(gt)), phased)[0]


def downcode_gt_string(values: pa.Array, allele_index: np.ndarray, was_split: np.ndarray) -> pa.Array:
    """PGT is declared a String but holds a call ('0|1'); Hail downcodes it like GT."""
    out = values.to_pylist()
    for row in np.flatnonzero(was_split):
        call = out[row]
        if call is None:
            continue
        separator = "|" if "|" in call else "/"
        alleles = call.replace("|", "/").split("/")
        out[row] = separator.join(a if a == "." else str(int(a == str(allele_index[row]))) for a in alleles)
    return canonical_call_strings(pa.array(out, pa.string()))


def _list_parts(lists: pa.ListArray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(values filled with 0, value-is-valid, offsets, lengths) of an integer ListArray."""
    values = list_values(lists)
    valid = values.is_valid().to_numpy(zero_copy_only=False) if values.null_count else np.ones(len(values), bool)
    offsets = list_offsets(lists)
    return values.fill_null(0).to_numpy().astype(np.int64), valid, offsets, np.diff(offsets)


def _complete(lists: pa.ListArray, valid: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per row: the list is present and has no missing element."""
    missing_per_row = np.add.reduceat(~valid, offsets[:-1]) if len(valid) else np.zeros(len(offsets) - 1)
    missing_per_row = np.where(np.diff(offsets) > 0, missing_per_row, 0)
    return lists.is_valid().to_numpy(zero_copy_only=False) & (missing_per_row == 0)


def split_ad(ad: pa.ListArray, n_alleles: np.ndarray, allele_index: np.ndarray) -> pa.ListArray:
    """Hail's ``[sum(AD) - AD[i], AD[i]]``: the sum skips missing depths, a missing ``AD[i]`` makes both
    missing; null when AD is missing or not one depth per allele."""
    values, valid, offsets, lengths = _list_parts(ad)
    usable = ad.is_valid().to_numpy(zero_copy_only=False) & (lengths == n_alleles) & (lengths > 0)
    valid_values = np.where(valid, values, 0)
    sums = np.add.reduceat(valid_values, offsets[:-1]) if len(values) else np.zeros(len(lengths), np.int64)
    sums = np.where(lengths > 0, sums, 0)
    slot = np.minimum(offsets[:-1] + allele_index, max(len(values) - 1, 0))
    picked = values[slot] if len(values) else sums
    picked_valid = valid[slot] if len(values) else np.zeros(len(lengths), bool)
    pairs = np.stack([sums - picked, picked], axis=1).reshape(-1)
    element_valid = np.repeat(picked_valid, 2)
    flat = pa.array(pairs.astype(np.int32), mask=~element_valid)
    offsets_out = pa.array(np.arange(len(usable) + 1, dtype=np.int32) * 2)
    return pa.ListArray.from_arrays(offsets_out, flat, mask=pa.array(~usable))


@lru_cache(maxsize=64)
def _genotype_alleles(n_genotypes: int) -> tuple[np.ndarray, np.ndarray]:
    """Diploid genotype index j → alleles (a, b) with a ≤ b, in VCF order."""
    first, second = [], []
    b = 0
    while len(first) < n_genotypes:
        for a in range(b + 1):
            first.append(a)
            second.append(b)
        b += 1
    return np.array(first[:n_genotypes]), np.array(second[:n_genotypes])


def split_pl(pl: pa.ListArray, n_alleles: np.ndarray, allele_index: np.ndarray,
             gt: pa.ListArray | None) -> tuple[pa.ListArray, np.ndarray]:
    """Hail's split PL and a mask of rows where it is defined.

    Diploid call: three values, each the minimum of the PLs whose genotype downcodes to 0/0, 0/1, 1/1.
    Haploid call: two values, min of PL[j != i] and PL[i]. No call (or another ploidy): null, as in Hail,
    whose split PL depends on the call's ploidy."""
    values, valid, offsets, lengths = _list_parts(pl)
    rows = len(lengths)
    ploidy = np.zeros(rows, np.int64) if gt is None else \
        np.where(gt.is_valid().to_numpy(zero_copy_only=False), np.diff(list_offsets(gt)), 0)
    complete = _complete(pl, valid, offsets)
    diploid = complete & (ploidy == 2) & (lengths == n_alleles * (n_alleles + 1) // 2) & (lengths > 0)
    haploid = complete & (ploidy == 1) & (lengths >= n_alleles) & (lengths > 0)
    width = np.where(diploid, 3, np.where(haploid, 2, 0))
    result = np.full((rows, 3), np.iinfo(np.int64).max, dtype=np.int64)
    if len(values):
        parents = np.repeat(np.arange(rows), lengths)
        position = np.arange(len(values)) - offsets[:-1][parents]
        first, second = _genotype_alleles(int(lengths.max()))
        target = allele_index[parents]
        genotype_class = (first[position] == target).astype(np.int64) + (second[position] == target)
        keep = diploid[parents]
        np.minimum.at(result, (parents[keep], genotype_class[keep]), values[keep])
        haploid_class = (position == target).astype(np.int64)
        keep = haploid[parents] & (position < n_alleles[parents])
        np.minimum.at(result, (parents[keep], haploid_class[keep]), values[keep])
    flat = result[np.arange(3)[None, :] < width[:, None]]
    out_offsets = pa.array(np.concatenate([[0], np.cumsum(width)]).astype(np.int32))
    usable = diploid | haploid
    return pa.ListArray.from_arrays(out_offsets, pa.array(flat.astype(np.int32)), mask=pa.array(~usable)), usable


def gq_from_pl(split_pl_values: pa.ListArray, usable: np.ndarray, gq: pa.Array) -> pa.Array:
    """Hail's gq_from_pl: second-smallest minus smallest, both starting at 99 (for 2 or 3 values)."""
    values = list_values(split_pl_values).fill_null(0).to_numpy()
    offsets = list_offsets(split_pl_values)
    padded = np.full((len(usable), 5), GQ_CAP, dtype=np.int64)
    for width in (2, 3):
        rows = np.flatnonzero(np.diff(offsets) == width)
        for k in range(width):
            padded[rows, k] = values[offsets[rows] + k]
    padded.sort(axis=1)
    recomputed = pa.array((padded[:, 1] - padded[:, 0]).astype(np.int32))
    return pc.if_else(pa.array(usable), recomputed, gq)


def min_rep(pos: np.ndarray, ref: list[str], alt: list[str], rows: np.ndarray) -> None:
    """Hail's min_rep on (ref, alt) pairs, in place for ``rows``: trim suffix, then prefix."""
    for row in rows:
        r, a = ref[row], alt[row]
        if len(r) == 1 or len(a) == 1:
            continue
        suffix = 0
        while suffix < min(len(r), len(a)) - 1 and r[-1 - suffix] == a[-1 - suffix]:
            suffix += 1
        if suffix:
            r, a = r[: len(r) - suffix], a[: len(a) - suffix]
        prefix = 0
        while prefix < min(len(r), len(a)) - 1 and r[prefix] == a[prefix]:
            prefix += 1
        ref[row], alt[row] = r[prefix:], a[prefix:]
        pos[row] += prefix
