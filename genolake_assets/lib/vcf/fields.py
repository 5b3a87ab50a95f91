"""Vectorised typing of VCF values (strings → Arrow arrays typed from the header).

Everything here works on whole Arrow arrays; there is no per-record Python on the hot path.
Errors are located (row index, offending value) only on the slow path after a cast fails.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from genolake_assets.lib.vcf.header import FieldDef

ARROW_SCALAR = {"Integer": pa.int32(), "Float": pa.float64(), "String": pa.string(), "Character": pa.string()}
_INT32_RANGE = (-(2**31), 2**31 - 1)


class ValueTypeError(ValueError):
    """A value that does not parse as its declared type; ``row`` indexes the batch.

    The message does not quote the value (it may be anything a file holds); ``value`` keeps it."""

    def __init__(self, row: int, value: str, expected: str):
        self.row, self.value, self.expected = row, value, expected
        super().__init__(f"a value of {len(str(value))} characters is not a valid {expected}")


def arrow_type(fdef: FieldDef) -> pa.DataType:
    if fdef.type == "Flag":
        return pa.bool_()
    scalar = ARROW_SCALAR[fdef.type]
    return pa.list_(scalar) if fdef.is_list else scalar


def null_dots(values: pa.Array) -> pa.Array:
    """'.' (and the empty string) mean missing in VCF."""
    missing = pc.or_(pc.equal(values, "."), pc.equal(values, ""))
    return pc.if_else(missing, pa.scalar(None, pa.string()), values)


def _first_bad(values: pa.Array, expected: str) -> tuple[int, str]:
    for index, value in enumerate(values.to_pylist()):
        if value is None:
            continue
        try:
            number = int(value) if expected == "Integer" else float(value)
        except ValueError:
            return index, value
        if expected == "Integer" and not _INT32_RANGE[0] <= number <= _INT32_RANGE[1]:
            return index, value
    return -1, ""


def cast_scalars(values: pa.Array, vcf_type: str) -> pa.Array:
    """Cast a string array (nulls for missing) to the Arrow type of ``vcf_type``.

    Raises ValueTypeError with the index of the first bad element.
    """
    target = ARROW_SCALAR[vcf_type]
    if target == pa.string():
        if vcf_type == "Character":
            too_long = pc.greater(pc.utf8_length(values), 1)
            if pc.any(too_long).as_py():
                index = int(np.flatnonzero(too_long.to_numpy(zero_copy_only=False) == True)[0])  # noqa: E712
                raise ValueTypeError(index, values[index].as_py(), "Character")
        return values
    try:
        return pc.cast(values, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        index, value = _first_bad(values, vcf_type)
        raise ValueTypeError(index, value, vcf_type) from None


def typed_values(values: pa.Array, fdef: FieldDef) -> pa.Array:
    """Per-record raw strings (null where the key is absent) → the column for ``fdef``.

    For list fields a whole-value '.' is a missing list; '.' inside a list is a missing element.
    Raises ValueTypeError whose row is the record's index.
    """
    if fdef.type == "Flag":
        return pc.is_valid(values)
    values = null_dots(values)
    if not fdef.is_list:
        return cast_scalars(values, fdef.type)
    encoded = pc.dictionary_encode(values)
    if len(encoded.dictionary) * 4 < len(values):
        # Repetitive lists (PL "0,3,14" in reference blocks) are parsed once per distinct value.
        try:
            return _typed_lists(encoded.dictionary, fdef).take(encoded.indices)
        except ValueTypeError as exc:
            bad = encoded.dictionary[exc.row]
            row = int(np.flatnonzero(pc.equal(values, bad).to_numpy(zero_copy_only=False))[0])
            raise ValueTypeError(row, exc.value, exc.expected) from None
    return _typed_lists(values, fdef)


def _typed_lists(values: pa.Array, fdef: FieldDef) -> pa.ListArray:
    lists = pc.split_pattern(values, ",")
    flat = null_dots(list_values(lists))
    try:
        typed = cast_scalars(flat, fdef.type)
    except ValueTypeError as exc:
        raise ValueTypeError(int(list_parents(lists)[exc.row]), exc.value, exc.expected) from None
    offsets = pa.array(list_offsets(lists), pa.int32())
    return pa.ListArray.from_arrays(offsets, typed, mask=pc.is_null(lists))


_NUMPY_TYPES = {pa.int32(): np.int32, pa.float64(): np.float64, pa.bool_(): np.bool_}


def absent(fdef: FieldDef, length: int) -> pa.Array:
    """The column of a key that no record of the batch carries: all null (a Flag: all false)."""
    if fdef.type == "Flag":
        return pa.array(np.zeros(length, dtype=bool))
    return pa.nulls(length, arrow_type(fdef))


def typed_at(values: pa.Array, rows: np.ndarray, length: int, fdef: FieldDef) -> pa.Array:
    """Type the raw strings present at ``rows`` (sorted) and spread them over ``length`` records.

    Typing happens on the compact values only, so a key that few records carry costs little.
    """
    if len(rows) == 0:
        return absent(fdef, length)
    typed = typed_values(values, fdef)
    if len(rows) == length:
        return typed
    numpy_type = _NUMPY_TYPES.get(typed.type)
    if numpy_type is not None:
        filled = np.zeros(length, dtype=numpy_type)
        valid = np.zeros(length, dtype=bool)
        if len(rows):
            filled[rows] = typed.fill_null(False if numpy_type is np.bool_ else 0).to_numpy(zero_copy_only=False)
            valid[rows] = typed.is_valid().to_numpy(zero_copy_only=False)
        if fdef.type == "Flag":
            return pa.array(filled & valid)
        return pa.array(filled, type=typed.type, mask=~valid)
    return scatter(typed, rows, length)


def scatter(values: pa.Array, rows: np.ndarray, length: int) -> pa.Array:
    """An array of ``length`` with values[i] at rows[i] and nulls elsewhere."""
    take = np.full(length, -1, dtype=np.int64)
    take[rows] = np.arange(len(rows), dtype=np.int64)
    return values.take(pa.array(take, mask=take < 0))


REPETITION_PROBE = 4096


def repetitive(values: pa.Array) -> bool:
    """Whether decoding each distinct value once is worth a hash pass (judged on a prefix)."""
    probe = values.slice(0, REPETITION_PROBE)
    return len(probe) > 0 and len(pc.unique(probe)) * 4 < len(probe)


def distinct_pairs(first: pa.Array, second: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(indices, distinct firsts, distinct seconds): row i holds the pair at ``indices[i]``."""
    first_codes = pc.dictionary_encode(first)
    second_codes = pc.dictionary_encode(second)
    width = len(second_codes.dictionary)
    if len(first_codes.dictionary) == 1:  # one FORMAT string across the batch: the common case
        return second_codes.indices, first_codes.dictionary.take(np.zeros(width, np.int32)), second_codes.dictionary
    combined = first_codes.indices.to_numpy().astype(np.int64) * width + second_codes.indices.to_numpy()
    pairs = pc.dictionary_encode(pa.array(combined))
    distinct = pairs.dictionary.to_numpy()
    return (pairs.indices, first_codes.dictionary.take(pa.array(distinct // width)),
            second_codes.dictionary.take(pa.array(distinct % width)))


def first_row_with(indices: pa.Array, code: int) -> int:
    """The first row whose dictionary index is ``code`` (to report an error found in a dictionary)."""
    return int(np.flatnonzero(indices.to_numpy() == code)[0])


def take_or_nulls(values: pa.Array, indices: pa.Array) -> pa.Array:
    """``values.take(indices)``, without copying a column that is all null."""
    if values.null_count == len(values):
        return pa.nulls(len(indices), values.type)
    return values.take(indices)


def list_offsets(lists: pa.ListArray) -> np.ndarray:
    """Offsets of a ListArray as numpy, relative to :func:`list_values` (slice-safe)."""
    offsets = lists.offsets.to_numpy()
    return offsets - offsets[0]


def list_values(lists: pa.ListArray) -> pa.Array:
    """The child values that :func:`list_offsets` index, including any under null slots."""
    offsets = lists.offsets.to_numpy()
    return lists.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


def list_parents(lists: pa.ListArray) -> np.ndarray:
    """The row of each element of :func:`list_values`."""
    return np.repeat(np.arange(len(lists)), np.diff(list_offsets(lists)))
