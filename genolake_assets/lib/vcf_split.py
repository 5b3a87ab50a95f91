"""Multi-allelic splitting with Hail's ``split_multi_hts`` semantics, vectorised.

See docs/variant-table.md for the rules. Only rows that really were split pay for
the arithmetic; biallelic records pass through untouched.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from genolake_assets.lib.vcf_fields import list_offsets, list_parents, list_values

GQ_CAP = 99


def downcode_gt(gt: pa.ListArray, allele_index: np.ndarray, was_split: np.ndarray) -> pa.ListArray:
    """Allele ``i`` → 1, other called alleles → 0, missing stays missing (split rows only)."""
    values = list_values(gt)
    parents = list_parents(gt)
    called = values.is_valid().to_numpy(zero_copy_only=False) if values.null_count else np.ones(len(values), bool)
    raw = values.fill_null(0).to_numpy().astype(np.int16)
    downcoded = (raw == allele_index[parents]).astype(np.int16)
    result = np.where(was_split[parents], downcoded, raw)
    offsets = pa.array(list_offsets(gt), pa.int32())
    return pa.ListArray.from_arrays(offsets, pa.array(result, mask=~called), mask=pc.is_null(gt))


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
    return pa.array(out, pa.string())


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


def _int_lists(flat: np.ndarray, width: int, valid_rows: np.ndarray) -> pa.ListArray:
    offsets = pa.array(np.arange(len(valid_rows) + 1, dtype=np.int32) * width)
    return pa.ListArray.from_arrays(offsets, pa.array(flat.astype(np.int32)), mask=pa.array(~valid_rows))


def split_ad(ad: pa.ListArray, n_alleles: np.ndarray, allele_index: np.ndarray) -> pa.ListArray:
    values, valid, offsets, lengths = _list_parts(ad)
    usable = _complete(ad, valid, offsets) & (lengths == n_alleles)
    sums = np.add.reduceat(values, offsets[:-1]) if len(values) else np.zeros(len(lengths), np.int64)
    sums = np.where(lengths > 0, sums, 0)
    picked = values[np.minimum(offsets[:-1] + allele_index, max(len(values) - 1, 0))] if len(values) else sums
    pairs = np.stack([sums - picked, picked], axis=1).reshape(-1)
    return _int_lists(pairs, 2, usable)


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


def split_pl(pl: pa.ListArray, n_alleles: np.ndarray, allele_index: np.ndarray) -> tuple[pa.ListArray, np.ndarray]:
    """Returns the split PL and a mask of rows where it is defined."""
    values, valid, offsets, lengths = _list_parts(pl)
    usable = _complete(pl, valid, offsets) & (lengths == n_alleles * (n_alleles + 1) // 2) & (lengths > 0)
    rows = len(lengths)
    result = np.full((rows, 3), np.iinfo(np.int64).max, dtype=np.int64)
    if len(values):
        parents = np.repeat(np.arange(rows), lengths)
        position = np.arange(len(values)) - offsets[:-1][parents]
        first, second = _genotype_alleles(int(lengths.max()))
        target = allele_index[parents]
        genotype_class = (first[position] == target).astype(np.int64) + (second[position] == target)
        keep = usable[parents]
        np.minimum.at(result, (parents[keep], genotype_class[keep]), values[keep])
    result[~usable] = 0
    return _int_lists(result.reshape(-1), 3, usable), usable


def gq_from_pl(split_pl_values: pa.ListArray, usable: np.ndarray, gq: pa.Array) -> pa.Array:
    """Hail's gq_from_pl: second-smallest minus smallest, both starting at 99."""
    values = list_values(split_pl_values).fill_null(0).to_numpy().reshape(-1, 3)
    padded = np.concatenate([values, np.full((len(values), 2), GQ_CAP)], axis=1)
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
