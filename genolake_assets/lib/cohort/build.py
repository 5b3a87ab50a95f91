"""One cohort update, published: the single code path of the ``cohort_variants`` asset and of
``genolake cohort`` (docs/cohort-layout.md, "Updates: append, then compact").

``update_cohort`` (layout.py) is pure: local files in, local files and a new manifest out. This module
does what is around it, against the lake's object store: load the manifest, pick the samples whose
version token changed, remove what a dead writer left, upload the new files, write the manifest last
(the switch readers see), and delete the folders the previous version retired.

No Dagster here: the caller passes the store, ``fetch(key) -> local Path`` (the file itself in a local
lake, a cached download on S3), a work folder of its own, the sample tokens and the two limits.
"""

from __future__ import annotations

import fcntl
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from genolake_assets.lib.cohort.layout import (
    COHORT_PREFIX,
    DEFAULT_MAX_FILES_PER_PARTITION,
    DEFAULT_MAX_SAMPLES_PER_RUN,
    STATE_KEY,
    CohortState,
    CohortUpdate,
    SampleInput,
    unlisted_keys,
    update_cohort,
)
from genolake_assets.lib.lake.layout import REFERENCE_BLOCKS_TABLE, VARIANTS_TABLE, partition_key

# Beside the manifest; a dot file, which store listings skip.
WRITER_LOCK_KEY = "registry/cohort/.writer.lock"


class CohortUpdater(Protocol):
    """Computes one update: writes its files (into ``work_dir`` to be uploaded, listed in ``uploads``; or
    straight into the lake) and returns the next manifest. ``samples`` maps the samples to fold in to their
    tokens; ``drop`` names those whose rows go first. The in-process one is :func:`update_in_process`; the
    distributed one runs on Spark (resources/cohort/)."""

    def __call__(self, store, fetch: Callable[[str], Path], state: CohortState, samples: dict[str, str],
                 drop: set[str], work_dir: Path, max_files: int) -> CohortUpdate: ...


def update_in_process(store, fetch: Callable[[str], Path], state: CohortState, samples: dict[str, str],
                      drop: set[str], work_dir: Path, max_files: int) -> CohortUpdate:
    """The update in this process (layout.update_cohort), reading the samples' files through ``fetch``."""
    inputs = [_sample_input(store, fetch, sample_id, token) for sample_id, token in samples.items()]
    return update_cohort(state, inputs, drop, fetch=fetch, out_dir=work_dir, max_files=max_files)


class ConcurrentWriterError(RuntimeError):
    """Another writer published a manifest while this update worked: nothing of this update was published."""


@dataclass
class CohortBuild:
    """What one update did (the asset's materialisation metadata, the CLI's summary)."""

    previous: CohortState
    update: CohortUpdate
    samples_added: int  # new to the table
    samples_reconverted: int  # already in it with another token: their rows were replaced
    samples_pending: int  # changed, but beyond max_samples: left for the next update
    orphans_removed: list[str] = field(default_factory=list)
    retired_folders_deleted: int = 0
    seconds: float = 0.0

    @property
    def state(self) -> CohortState:
        return self.update.state

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.state.partitions.values())

    @property
    def files(self) -> int:
        return sum(len(p.files) for p in self.state.partitions.values())


def load_state(store) -> CohortState:
    """The published manifest, or an empty cohort."""
    return CohortState.from_json(store.read_bytes(STATE_KEY)) if store.exists(STATE_KEY) else CohortState.empty()


def changed_samples(state: CohortState, tokens: dict[str, str]) -> list[str]:
    """Samples whose token the manifest does not hold: new or re-converted, in sample order.

    Samples the manifest holds but ``tokens`` lacks stay in the table (removing a sample is not an update)."""
    return sorted(s for s, t in tokens.items() if state.samples.get(s) != t)


def build_cohort(store, fetch: Callable[[str], Path], work_dir: Path, tokens: dict[str, str], *,
                 max_files: int = DEFAULT_MAX_FILES_PER_PARTITION,
                 max_samples: int = DEFAULT_MAX_SAMPLES_PER_RUN,
                 log: Callable[[str], None] = lambda message: None,
                 updater: CohortUpdater = update_in_process) -> CohortBuild:
    """Fold up to ``max_samples`` changed samples into the cohort table and publish a new version.

    Publishes a version even when nothing changed, so the previous version's retired folders go.
    ``work_dir`` is this update's own and is removed at the end. Raises ``ConcurrentWriterError`` when
    the manifest moved meanwhile (the uploads are then orphans the next update removes).
    """
    started = time.perf_counter()
    with _one_writer(store, log):
        state = load_state(store)
        changed = changed_samples(state, tokens)
        batch = changed[:max_samples]
        drop = {s for s in batch if s in state.samples}
        # One writer at a time: anything under cohort/ the manifest does not list is a dead writer's.
        orphans = unlisted_keys(state, (obj.key for obj in store.list_objects(COHORT_PREFIX)))
        for key in orphans:
            store.delete(key)
        if orphans:
            log(f"removed {len(orphans)} cohort file(s) an interrupted run left, e.g. {orphans[0]}")
        try:
            # Nothing to fold in: the in-process update only carries the manifest over (no engine, no cluster)
            engine = updater if batch else update_in_process
            update = engine(store, fetch, state, {s: tokens[s] for s in batch}, drop, work_dir, max_files)
            for key, path in update.uploads.items():
                store.upload(path, key)
            strays = _stray_keys(store, state, update.state)
            for key in strays:
                store.delete(key)
            if strays:
                log(f"removed {len(strays)} cohort file(s) the update wrote but does not list (a retried task's), "
                    f"e.g. {strays[0]}")
            if load_state(store).version != state.version:
                raise ConcurrentWriterError(f"{STATE_KEY} changed while this update worked (another writer); "
                                            "nothing was published, run it again to fold the samples in")
            # The manifest is the switch: written last, in one replace.
            store.write_bytes(STATE_KEY, update.state.to_json())
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
        for folder in state.retired:  # unused since the previous version: no reader can still hold them
            store.delete_prefix(folder)
    return CohortBuild(previous=state, update=update, samples_added=len(batch) - len(drop),
                       samples_reconverted=len(drop), samples_pending=len(changed) - len(batch),
                       orphans_removed=orphans, retired_folders_deleted=len(state.retired),
                       seconds=time.perf_counter() - started)


def _stray_keys(store, previous: CohortState, state: CohortState) -> list[str]:
    """Files under cohort/ that neither version lists: what a distributed update's failed task attempts
    wrote before their retries succeeded. Folder readers would count their rows. The previous version's
    retired folders are left to the usual deletion after the switch."""
    kept = tuple(previous.retired)
    return [key for key in unlisted_keys(state, (obj.key for obj in store.list_objects(COHORT_PREFIX)))
            if not (kept and key.startswith(kept))]


def _sample_input(store, fetch: Callable[[str], Path], sample_id: str, token: str) -> SampleInput:
    paths = {}
    for table in (VARIANTS_TABLE, REFERENCE_BLOCKS_TABLE):
        key = partition_key(table, sample_id)
        paths[table] = fetch(key) if store.exists(key) else None
    return SampleInput(sample_id, token, paths[VARIANTS_TABLE], paths[REFERENCE_BLOCKS_TABLE])


@contextmanager
def _one_writer(store, log: Callable[[str], None]) -> Iterator[None]:
    """In a local lake, an exclusive lock for the update, so ``genolake cohort`` and the asset (or two
    CLI runs) never interleave: the orphan sweep above would delete the other's uploads. On S3 the
    asset's ``cohort_writer`` pool keeps to one writer. The kernel drops the lock if the process dies."""
    path = store.local_path(WRITER_LOCK_KEY)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another cohort writer of this lake to finish ({path} is locked)")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # released when the file closes
