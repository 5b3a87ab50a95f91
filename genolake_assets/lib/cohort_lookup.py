"""Every sample's genotype at a few markers, read from the locus-ordered cohort table.

A marker at position p of contig c lives in one partition, ``c/(p // bin_size)``
(docs/cohort-layout.md). Only that partition's live files are opened, and in each only the row
groups whose ``pos``/``end`` statistics can hold a row covering p are read: a reference block
starting before p covers it too, so a row group is kept when ``min(pos) <= p <= max(end)``.

On S3 the cost of a lookup is requests, not bytes: the selected column chunks are fetched through
Arrow's pre-buffer cache, which coalesces nearby ranges into few large GETs (``ReaderSettings``).

Status of a sample at a marker (one row per sample, or one per carried allele):

* ``variant``: the sample carries the row's alt (an allele >= 1 in its split genotype);
* ``other_allele``: the marker names an allele the sample does not carry, but it carries another
  alt at this position; the row shows that other allele and its genotype;
* ``hom_ref``: a reference block covers p, or the sample's variant rows at p are all fully called
  and all reference (a split multi-allelic site the sample is ref at);
* ``no_call``: nothing covers p for this sample (genotype null), or its rows at p are (partly)
  missing calls such as ``./.`` or ``0/.`` (the genotype then says so).
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from genolake_assets.lib.cohort_state import CohortState, partition_key

MIB = 1 << 20
VARIANT = "variant"
OTHER_ALLELE = "other_allele"
HOM_REF = "hom_ref"
NO_CALL = "no_call"
REFERENCE_BLOCK_KIND = "reference_block"
READ_COLUMNS = ["contig", "pos", "end", "ref", "alt", "sample_id", "kind", "gt", "gt_phased", "gq", "dp"]
# Footers are read by a few threads at once: on S3 each is a HEAD and a GET, dominated by latency.
METADATA_THREADS = 16

RESULT_SCHEMA = pa.schema([
    pa.field("marker", pa.string()),
    pa.field("contig", pa.string()),
    pa.field("pos", pa.int32()),
    pa.field("sample_id", pa.string()),
    pa.field("status", pa.string()),
    pa.field("ref", pa.string()),
    pa.field("alt", pa.string()),
    pa.field("genotype", pa.string()),
    pa.field("gt", pa.list_(pa.int16())),
    pa.field("gq", pa.int32()),
    pa.field("dp", pa.int32()),
])

_MARKER = re.compile(r"^(?P<contig>[A-Za-z0-9_.-]+):(?P<pos>[0-9]+)(?::(?P<ref>[A-Za-z*]+):(?P<alt>[A-Za-z*]+))?$")


@dataclass(frozen=True)
class Marker:
    contig: str
    pos: int
    ref: str | None = None
    alt: str | None = None

    def __str__(self) -> str:
        if self.ref is None and self.alt is None:
            return f"{self.contig}:{self.pos}"
        return f"{self.contig}:{self.pos}:{self.ref}:{self.alt}"


def parse_marker(text: str) -> Marker:
    """``chr22:19951271`` or ``chr22:19951271:A:G`` (alleles are upper-cased)."""
    match = _MARKER.match(text.strip()) if isinstance(text, str) else None
    if match is None or int(match.group("pos")) < 1:
        raise ValueError(f"marker {text!r} is not CONTIG:POS or CONTIG:POS:REF:ALT (e.g. chr22:19951271:A:G, "
                         "POS 1-based)")
    ref, alt = match.group("ref"), match.group("alt")
    return Marker(match.group("contig"), int(match.group("pos")),
                  ref.upper() if ref else None, alt.upper() if alt else None)


@dataclass(frozen=True)
class ReaderSettings:
    """How Parquet byte ranges are fetched.

    On S3 connection setup and many small range reads dominate a lookup, so the column chunks
    of the selected row groups are pre-buffered: ranges closer than ``hole_size_limit`` are
    merged, up to ``range_size_limit`` per request.
    """
    pre_buffer: bool = True
    range_size_limit: int = 8 * MIB
    hole_size_limit: int = 1 * MIB
    buffer_size: int = 0  # > 0: stream column chunks through a buffer of this size instead
    use_threads: bool = True

    def file_format(self) -> ds.ParquetFileFormat:
        cache = pa.CacheOptions(hole_size_limit=self.hole_size_limit, range_size_limit=self.range_size_limit)
        options = ds.ParquetFragmentScanOptions(
            pre_buffer=self.pre_buffer, cache_options=cache,
            use_buffered_stream=self.buffer_size > 0, buffer_size=self.buffer_size or 8192)
        return ds.ParquetFileFormat(default_fragment_scan_options=options)


@dataclass
class LookupResult:
    table: pa.Table
    files_opened: int = 0
    row_groups_read: int = 0
    row_groups_total: int = 0  # in the files opened
    bytes_read: int = 0  # bytes returned by the files' read calls: footers plus the coalesced ranges
    read_requests: int = 0  # read calls on the files (on S3: ranged GETs, plus one HEAD per file open)
    seconds: float = 0.0


class _CountingReader:
    """A file-like view of an Arrow input file that counts what is read through it.

    Wrapped in ``pa.PythonFile``, whose ReadAt is a locked seek + read: reads of one file are
    serialised (different files are still read in parallel), a cost next to a lookup's request count.
    """

    def __init__(self, inner: pa.NativeFile):
        self._inner = inner
        self._position = 0
        self.bytes_read = 0
        self.read_requests = 0

    def read_buffer(self, nbytes: int) -> pa.Buffer:
        self._inner.seek(self._position)
        buffer = self._inner.read_buffer(nbytes)
        self._position += buffer.size
        self.bytes_read += buffer.size
        self.read_requests += 1
        return buffer

    def read(self, nbytes: int = -1) -> bytes:
        return self.read_buffer(nbytes).to_pybytes()

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._position, 2: self._inner.size()}[whence]
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position

    def size(self) -> int:
        return self._inner.size()

    def close(self) -> None:
        self._inner.close()

    @property
    def closed(self) -> bool:
        return self._inner.closed

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True


@dataclass
class _OpenFile:
    counter: _CountingReader
    fragment: ds.ParquetFileFragment
    selected: list[int] = field(default_factory=list)


def contig_spellings(contig: str) -> list[str]:
    """``chr22`` and ``22`` name the same contig (likewise ``chrM`` and ``MT``)."""
    bare = contig[3:] if contig.lower().startswith("chr") else contig
    spellings = [contig, bare, f"chr{bare}"]
    if bare.upper() in ("M", "MT"):
        spellings += ["MT", "chrM"]
    return list(dict.fromkeys(spellings))


def resolve_contig(contig: str, present: set[str]) -> str:
    """The spelling of ``contig`` the cohort uses (the marker's own when the cohort lacks it)."""
    return next((name for name in contig_spellings(contig) if name in present), contig)


def lookup(markers: list[Marker], state: CohortState, filesystem: pafs.FileSystem, root: str,
           settings: ReaderSettings = ReaderSettings()) -> LookupResult:
    """Every sample of ``state`` at each marker: a row per (marker, sample) or per carried allele."""
    started = time.perf_counter()
    present = {p.contig for p in state.partitions.values()}
    located = [(marker, resolve_contig(marker.contig, present)) for marker in markers]
    wanted: dict[str, set[int]] = defaultdict(set)
    for marker, contig in located:
        name = partition_key(contig, marker.pos // state.bin_size)
        if name in state.partitions:
            wanted[name].add(marker.pos)

    keys = [(key, positions) for name, positions in sorted(wanted.items())
            for key in state.live_keys(name)]
    opened = _open_files(filesystem, root, keys, settings)
    try:
        rows = _read_selected(opened, settings)
        result = LookupResult(
            table=_result_table(located, sorted(state.samples), rows),
            files_opened=len(opened),
            row_groups_read=sum(len(f.selected) for f in opened),
            row_groups_total=sum(f.fragment.num_row_groups for f in opened))
    finally:
        for f in opened:
            f.counter.close()
    result.bytes_read = sum(f.counter.bytes_read for f in opened)
    result.read_requests = sum(f.counter.read_requests for f in opened)
    result.seconds = time.perf_counter() - started
    return result


def _join(root: str, key: str) -> str:
    return f"{root.rstrip('/')}/{key}" if root else key


def _open_files(filesystem: pafs.FileSystem, root: str, keys: list[tuple[str, set[int]]],
                settings: ReaderSettings) -> list[_OpenFile]:
    file_format = settings.file_format()

    def open_one(key_positions: tuple[str, set[int]]) -> _OpenFile:
        key, positions = key_positions
        counter = _CountingReader(filesystem.open_input_file(_join(root, key)))
        try:
            fragment = file_format.make_fragment(pa.PythonFile(counter, mode="r"))
            fragment.ensure_complete_metadata()  # the footer; kept by the fragment and its subsets
            selected = [info.id for info in fragment.row_groups if _may_cover(info.statistics, positions)]
        except BaseException:
            counter.close()
            raise
        return _OpenFile(counter, fragment, selected)

    if not settings.use_threads or len(keys) < 2:
        return [open_one(k) for k in keys]
    with ThreadPoolExecutor(max_workers=min(METADATA_THREADS, len(keys))) as pool:
        futures = [pool.submit(open_one, k) for k in keys]
        opened, failure = [], None
        for future in futures:
            try:
                opened.append(future.result())
            except BaseException as error:  # close every file that did open before failing
                failure = failure or error
        if failure is not None:
            for f in opened:
                f.counter.close()
            raise failure
        return opened


def _may_cover(statistics: dict, positions: set[int]) -> bool:
    """Whether a row group can hold a row with pos <= p <= end for a wanted p (no statistics: yes)."""
    low = statistics.get("pos", {}).get("min")
    high = statistics.get("end", {}).get("max")
    if low is None or high is None:
        return True
    return any(low <= p <= high for p in positions)


def _read_selected(opened: list[_OpenFile], settings: ReaderSettings) -> pa.Table:
    fragments = [f.fragment.subset(row_group_ids=f.selected) for f in opened if f.selected]
    if not fragments:
        return pa.table({name: pa.array([], pa.string()) for name in READ_COLUMNS})
    schema = fragments[0].physical_schema
    dataset = ds.FileSystemDataset(fragments, schema, opened[0].fragment.format)
    return dataset.to_table(columns=READ_COLUMNS, use_threads=settings.use_threads)


def _result_table(located: list[tuple[Marker, str]], samples: list[str], rows: pa.Table) -> pa.Table:
    out: dict[str, list] = {name: [] for name in RESULT_SCHEMA.names}
    for marker, contig in located:
        per_sample = _rows_at(rows, contig, marker.pos)
        for sample_id in samples:
            for status, ref, alt, row in _sample_calls(marker, per_sample.get(sample_id, [])):
                values = {"marker": str(marker), "contig": contig, "pos": marker.pos, "sample_id": sample_id,
                          "status": status, "ref": ref, "alt": alt,
                          "genotype": _genotype(row) if row else None,
                          "gt": row["gt"] if row else None,
                          "gq": row["gq"] if row else None, "dp": row["dp"] if row else None}
                for name, value in values.items():
                    out[name].append(value)
    return pa.table(out, schema=RESULT_SCHEMA)


def _rows_at(rows: pa.Table, contig: str, pos: int) -> dict[str, list[dict]]:
    """sample_id → the rows covering ``pos``: variant rows starting there, reference blocks spanning it."""
    if rows.num_rows == 0:
        return {}
    starts_here = pc.equal(rows["pos"], pos)
    spans = pc.and_(pc.less_equal(rows["pos"], pos), pc.greater_equal(rows["end"], pos))
    is_block = pc.equal(rows["kind"], REFERENCE_BLOCK_KIND)
    covers = pc.and_(pc.equal(rows["contig"], contig),
                     pc.or_(pc.and_(is_block, spans), pc.and_(pc.invert(is_block), starts_here)))
    by_sample: dict[str, list[dict]] = defaultdict(list)
    for row in rows.filter(covers).sort_by([("sample_id", "ascending"), ("alt", "ascending")]).to_pylist():
        by_sample[row["sample_id"]].append(row)
    return by_sample


def _sample_calls(marker: Marker, rows: list[dict]) -> list[tuple[str, str | None, str | None, dict | None]]:
    """(status, ref, alt, row) for one sample at one marker; see the module docstring."""
    variants = [r for r in rows if r["kind"] != REFERENCE_BLOCK_KIND]
    blocks = [r for r in rows if r["kind"] == REFERENCE_BLOCK_KIND]
    carried = [r for r in variants if _carries_alt(r["gt"])]
    if marker.alt is not None:
        asked = [r for r in carried if r["ref"] == marker.ref and r["alt"] == marker.alt]
        if asked:
            return [(VARIANT, r["ref"], r["alt"], r) for r in asked]
        if carried:
            return [(OTHER_ALLELE, r["ref"], r["alt"], r) for r in carried]
    elif carried:
        return [(VARIANT, r["ref"], r["alt"], r) for r in carried]
    # Nothing carried: the sample is reference here, uncalled, or not covered.
    ref = marker.ref
    if variants:
        row = next((r for r in variants if _all_reference(r["gt"])), variants[0])
        status = HOM_REF if _all_reference(row["gt"]) else NO_CALL
        return [(status, ref or row["ref"], marker.alt, row)]
    if blocks:
        row = blocks[0]
        if ref is None and row["pos"] == marker.pos:  # a block's ref is the base at its start only
            ref = row["ref"]
        called = row["gt"] is None or _all_reference(row["gt"])
        return [(HOM_REF if called else NO_CALL, ref, marker.alt, row)]
    return [(NO_CALL, ref, marker.alt, None)]


def _carries_alt(gt: list[int | None] | None) -> bool:
    return bool(gt) and any(a is not None and a > 0 for a in gt)


def _all_reference(gt: list[int | None] | None) -> bool:
    return bool(gt) and all(a == 0 for a in gt)


def _genotype(row: dict) -> str | None:
    gt = row["gt"]
    if gt is None:  # a reference block without GT still asserts the reference
        return "0/0" if row["kind"] == REFERENCE_BLOCK_KIND else None
    separator = "|" if row["gt_phased"] else "/"
    return separator.join("." if a is None else str(a) for a in gt)
