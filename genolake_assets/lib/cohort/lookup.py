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

import threading
import time
from collections import OrderedDict, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from genolake_assets.lib.cohort.markers import (
    HOM_REF,
    NO_CALL,
    OTHER_ALLELE,
    REFERENCE_BLOCK_KIND,
    RESULT_SCHEMA,
    VARIANT,
    Marker,
    parse_marker,
)
from genolake_assets.lib.cohort.result import result_table
from genolake_assets.lib.cohort.state import STATE_KEY, CohortState, partition_key

MIB = 1 << 20
READ_COLUMNS = ["contig", "pos", "end", "ref", "alt", "sample_id", "kind", "gt", "gt_phased", "gq", "dp"]
# Read dictionary-encoded, as stored: decoding a row group's strings costs more than the rest of it,
# and only the rows covering a marker are decoded.
DICTIONARY_COLUMNS = ["contig", "ref", "alt", "sample_id", "kind"]
# Footers are read by a few threads at once: on S3 each is a HEAD and a GET, dominated by latency.
METADATA_THREADS = 16


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
        return ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=DICTIONARY_COLUMNS),
                                    default_fragment_scan_options=options)


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
    """Every sample of ``state`` at each marker: a row per (marker, sample) or per carried allele.

    A one-off query: the files are opened (footers read) and closed again. For many lookups in one
    process, :class:`CohortReader` keeps the manifest and the footers.
    """
    started = time.perf_counter()
    view = _StateView(state)
    located, keys = view.plan(markers)
    opened = _open_files(filesystem, root, keys, settings.file_format(), settings.use_threads)
    try:
        rows = _read_selected(opened, settings)
        result = _finish(located, view, rows, opened)
    finally:
        for f in opened:
            f.counter.close()
    result.bytes_read = sum(f.counter.bytes_read for f in opened)
    result.read_requests = sum(f.counter.read_requests for f in opened)
    result.seconds = time.perf_counter() - started
    return result


class CohortReader:
    """A warm, reusable marker lookup for services and notebooks.

    Keeps the parsed manifest (re-read only when its size or mtime changes, checked with one
    ``get_file_info`` per lookup) and, per live file, the open file with its footer (so a lookup
    reads only the selected row groups). Entries of files no longer live are dropped when a new
    manifest is seen; at most ``max_open_files`` files are kept open (least recently used first out).
    Thread-safe: the reads of concurrent lookups are serialised (so each result's byte and request
    counts are its own); building the result tables runs in parallel.
    """

    def __init__(self, filesystem: pafs.FileSystem, root: str, settings: ReaderSettings = ReaderSettings(),
                 max_open_files: int = 256):
        self.filesystem = filesystem
        self.root = root
        self.settings = settings
        self.max_open_files = max(1, max_open_files)
        self._format = settings.file_format()
        self._lock = threading.Lock()
        self._manifest_path = _join(root, STATE_KEY)
        self._manifest_signature: tuple | None = None
        self._view: _StateView | None = None
        self._files: OrderedDict[str, _OpenFile] = OrderedDict()

    @property
    def state(self) -> CohortState:
        """The current manifest (re-read if it changed)."""
        with self._lock:
            return self._refresh().state

    def lookup(self, markers: list[Marker]) -> LookupResult:
        started = time.perf_counter()
        with self._lock:
            view = self._refresh()
            located, keys = view.plan(markers)
            opened, before = self._files_for(keys)
            rows = _read_selected(opened, self.settings)
            bytes_read = sum(f.counter.bytes_read - b for f, (b, _) in zip(opened, before))
            read_requests = sum(f.counter.read_requests - r for f, (_, r) in zip(opened, before))
        result = _finish(located, view, rows, opened)
        result.bytes_read = bytes_read
        result.read_requests = read_requests
        result.seconds = time.perf_counter() - started
        return result

    def close(self) -> None:
        with self._lock:
            for f in self._files.values():
                f.counter.close()
            self._files.clear()

    def __enter__(self) -> CohortReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _refresh(self) -> _StateView:
        info = self.filesystem.get_file_info(self._manifest_path)
        if info.type != pafs.FileType.File:
            raise FileNotFoundError(f"no cohort table in this lake: {self._manifest_path} is missing; "
                                    "materialise the `cohort_variants` asset first")
        signature = (info.size, info.mtime_ns)
        if self._view is None or signature != self._manifest_signature:
            with self.filesystem.open_input_stream(self._manifest_path) as stream:
                state = CohortState.from_json(stream.read())
            self._view = _StateView(state)
            self._manifest_signature = signature
            live = set(state.all_live_keys())
            for key in [k for k in self._files if k not in live]:
                self._files.pop(key).counter.close()
        return self._view

    def _files_for(self, keys: list[tuple[str, np.ndarray]]) -> tuple[list[_OpenFile], list[tuple[int, int]]]:
        """The files to read, and their (bytes, requests) counts before this lookup (0 if opened by it)."""
        missing = [(key, positions) for key, positions in keys if key not in self._files]
        counts = {key: (self._files[key].counter.bytes_read, self._files[key].counter.read_requests)
                  for key, _ in keys if key in self._files}
        for f in _open_files(self.filesystem, self.root, missing, self._format, self.settings.use_threads):
            self._files[f.key] = f
        opened = []
        for key, positions in keys:
            f = self._files[key]
            self._files.move_to_end(key)
            f.selected = f.select(positions)
            opened.append(f)
        in_use = {key for key, _ in keys}
        for key in list(self._files):
            if len(self._files) <= self.max_open_files:
                break
            if key not in in_use:
                self._files.pop(key).counter.close()
        return opened, [counts.get(f.key, (0, 0)) for f in opened]


class _StateView:
    """What a lookup needs from a manifest, computed once per manifest."""

    def __init__(self, state: CohortState):
        self.state = state
        self.present = {p.contig for p in state.partitions.values()}
        self.samples = pa.array(sorted(state.samples), pa.string())

    def plan(self, markers: list[Marker]) -> tuple[list[tuple[Marker, str]], list[tuple[str, np.ndarray]]]:
        """(marker, the cohort's contig spelling) per marker, and (file key, sorted positions) to read."""
        state = self.state
        located = [(marker, resolve_contig(marker.contig, self.present)) for marker in markers]
        wanted: dict[str, set[int]] = defaultdict(set)
        for marker, contig in located:
            name = partition_key(contig, marker.pos // state.bin_size)
            if name in state.partitions:
                wanted[name].add(marker.pos)
        keys = [(key, np.array(sorted(positions), np.int64)) for name, positions in sorted(wanted.items())
                for key in state.live_keys(name)]
        return located, keys


def _join(root: str, key: str) -> str:
    return f"{root.rstrip('/')}/{key}" if root else key


@dataclass
class _OpenFile:
    key: str
    counter: _CountingReader
    fragment: ds.ParquetFileFragment
    pos_min: np.ndarray  # per row group; NaN where the statistics are missing
    end_max: np.ndarray
    selected: list[int] = field(default_factory=list)

    def select(self, positions: np.ndarray) -> list[int]:
        """Row groups that can hold a row with pos <= p <= end for a wanted p (no statistics: yes)."""
        at = np.searchsorted(positions, self.pos_min, side="left")
        hit = at < len(positions)
        hit[hit] = positions[at[hit]] <= self.end_max[hit]
        unknown = np.isnan(self.pos_min) | np.isnan(self.end_max)
        return np.flatnonzero(hit | unknown).tolist()


def _row_group_bounds(metadata) -> tuple[np.ndarray, np.ndarray]:
    columns = {metadata.schema.column(j).path: j for j in range(metadata.num_columns)}
    bounds = []
    for name, attribute in (("pos", "min"), ("end", "max")):
        values = np.full(metadata.num_row_groups, np.nan)
        if name in columns:
            for i in range(metadata.num_row_groups):
                statistics = metadata.row_group(i).column(columns[name]).statistics
                if statistics is not None and statistics.has_min_max:
                    values[i] = getattr(statistics, attribute)
        bounds.append(values)
    return bounds[0], bounds[1]


def _open_files(filesystem: pafs.FileSystem, root: str, keys: list[tuple[str, np.ndarray]],
                file_format: ds.ParquetFileFormat, use_threads: bool = True) -> list[_OpenFile]:
    def open_one(key_positions: tuple[str, np.ndarray]) -> _OpenFile:
        key, positions = key_positions
        counter = _CountingReader(filesystem.open_input_file(_join(root, key)))
        try:
            fragment = file_format.make_fragment(pa.PythonFile(counter, mode="r"))
            fragment.ensure_complete_metadata()  # the footer; kept by the fragment and its subsets
            opened = _OpenFile(key, counter, fragment, *_row_group_bounds(fragment.metadata))
            opened.selected = opened.select(positions)
        except BaseException:
            counter.close()
            raise
        return opened

    if not use_threads or len(keys) < 2:
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


def _read_selected(opened: list[_OpenFile], settings: ReaderSettings) -> pa.Table | None:
    fragments = [f.fragment.subset(row_group_ids=f.selected) for f in opened if f.selected]
    if not fragments:
        return None
    if len(fragments) == 1:
        return fragments[0].to_table(columns=READ_COLUMNS, use_threads=settings.use_threads)
    dataset = ds.FileSystemDataset(fragments, fragments[0].physical_schema, opened[0].fragment.format)
    return dataset.to_table(columns=READ_COLUMNS, use_threads=settings.use_threads)


def _finish(located: list[tuple[Marker, str]], view: _StateView, rows: pa.Table | None,
            opened: list[_OpenFile]) -> LookupResult:
    return LookupResult(
        table=result_table(located, view.samples, rows),
        files_opened=len(opened),
        row_groups_read=sum(len(f.selected) for f in opened),
        row_groups_total=sum(f.fragment.num_row_groups for f in opened))


__all__ = ["HOM_REF", "NO_CALL", "OTHER_ALLELE", "REFERENCE_BLOCK_KIND", "RESULT_SCHEMA", "VARIANT",
           "CohortReader", "LookupResult", "Marker", "ReaderSettings", "lookup", "parse_marker"]
