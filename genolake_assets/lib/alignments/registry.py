"""What the lake knows about alignment files and the references they need (JSON records in the lake).

References are content-addressed: a FASTA landed under ``landing/references/`` (with its ``.fai``,
and ``.gzi`` when bgzipped) is copied to ``references/<sha256>/<name>`` and described by its
sequences' names, lengths and md5s, so a BAM can be matched to the reference it was aligned to
from its @SQ lines alone, and a CRAM's catalog entry can say exactly which file decodes it.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from genolake_assets.lib.alignments.header import read_bam_header, require_bgzf_eof
from genolake_assets.lib.alignments.reference import ReferenceSequences, check_reference, index_paths, read_reference
from genolake_assets.lib.alignments.compress import FileDigest
from genolake_assets.lib.alignments.versions import same_content_version
from genolake_assets.lib.alignments.cram_codec import BGZF_EOF
from genolake_assets.lib.errors import AlignmentFileError
from genolake_assets.lib.lake.landing import mark_copied_into_raw
from genolake_assets.lib.lake.layout import (
    LANDING_REFERENCES_PREFIX,
    REFERENCE_REGISTRY_PREFIX,
    REFERENCES_PREFIX,
    alignment_quarantine_prefix,
    alignment_registry_key,
    is_reference_key,
    raw_bam_key,
)
from genolake_assets.lib.lake.quarantine import safe_file_name, stored_file_name
from genolake_assets.lib.lake.registry import utc_now


@dataclass
class ReferenceRecord:
    sha256: str
    md5: str
    file_name: str
    key: str
    index_keys: list[str]
    size: int
    sequences: dict[str, dict]
    """name → {"length": int, "md5": str}"""
    source_key: str
    registered_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    """Microseconds: two registrations of one landed path within a second must still order."""
    source_etag: str = ""

    def as_sequences(self, path: Path) -> ReferenceSequences:
        return ReferenceSequences(path=path, lengths={n: s["length"] for n, s in self.sequences.items()},
                                  md5s={n: s["md5"] for n, s in self.sequences.items()})

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, indent=1).encode()


@dataclass
class AlignmentRecord:
    """One landed alignment file, as registered by ``raw_bam`` and updated by the later assets."""

    alignment_id: str
    source_key: str
    source_uri: str
    source_etag: str = ""
    version: str = ""
    """A short token for the landed object's version (hash of its etag): names the raw copy and the CRAM."""
    raw_key: str | None = None
    raw_uri: str | None = None
    size: int | None = None
    sha256: str | None = None
    """Set from the compression job's result: it reads every byte anyway."""
    md5: str | None = None
    sort_order: str | None = None
    samples: list[str] = field(default_factory=list)
    read_groups: int = 0
    sequence_header: list[dict] = field(default_factory=list)
    """The BAM's @SQ lines (SN, LN, M5 when present): what picks its reference."""
    registered_at: str | None = None
    status: str = "landed"  # landed | registered | compressed | archive-tagged | quarantined
    reason: str | None = None
    reference_key: str | None = None
    cram_key: str | None = None
    result_key: str | None = None
    recognised_as: str | None = None
    """Set when the landed file's bytes were those of this earlier version (re-landed, not copied again)."""

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> AlignmentRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(data).items() if k in known})


def version_token(etag: str) -> str:
    return hashlib.sha256(etag.encode()).hexdigest()[:16]


def load_alignment(store, alignment_id: str) -> AlignmentRecord | None:
    key = alignment_registry_key(alignment_id)
    return AlignmentRecord.from_json(store.read_bytes(key)) if store.exists(key) else None


def save_alignment(store, record: AlignmentRecord) -> None:
    store.write_bytes(alignment_registry_key(record.alignment_id), record.to_json())


def load_references(store) -> list[ReferenceRecord]:
    records = []
    for obj in store.list_objects(REFERENCE_REGISTRY_PREFIX):
        if obj.key.endswith(".json"):
            records.append(ReferenceRecord(**json.loads(store.read_bytes(obj.key))))
    return records


def register_landed_references(store, local_copy: Callable[[str], Path]) -> tuple[list[ReferenceRecord], list[str]]:
    """Register every FASTA under ``landing/references/`` not registered yet.

    Returns the new records and, for FASTAs that cannot be registered yet (an index not landed),
    the reason: the FASTA is retried on the next call rather than quarantined, since its index may
    simply still be in transit.
    """
    known: dict[str, ReferenceRecord] = {}
    for record in sorted(load_references(store), key=lambda r: r.registered_at):
        known[record.source_key] = record  # the newest registration of each landed path
    registered, waiting = [], []
    for obj in store.list_objects(LANDING_REFERENCES_PREFIX):
        if not is_reference_key(obj.key):
            continue
        indexes = [obj.key + path.name[len(Path(obj.key).name):] for path in index_paths(Path(obj.key))]
        missing = [key for key in indexes if not store.exists(key)]
        if missing:
            waiting.append(f"{store.uri(obj.key)}: waiting for {', '.join(missing)}")
            continue
        previous = known.get(obj.key)
        if previous is not None and previous.source_etag == obj.etag:
            continue  # unchanged since registered: no download, no hashing of a 3 GB FASTA
        local = local_copy(obj.key)
        for key in indexes:
            local_copy(key)
        digest = FileDigest.of(local)
        if store.exists(f"{REFERENCE_REGISTRY_PREFIX}{digest.sha256}.json") and previous is not None \
                and previous.sha256 == digest.sha256:
            continue
        sequences = read_reference(local)
        name = safe_file_name(obj.key)
        key = f"{REFERENCES_PREFIX}{digest.sha256}/{name}"
        index_keys = [key + index[len(obj.key):] for index in indexes]
        for source, target in zip([obj.key, *indexes], [key, *index_keys], strict=True):
            if not store.exists(target):
                store.copy(source, target)
        record = ReferenceRecord(sha256=digest.sha256, md5=digest.md5, file_name=name, key=key, index_keys=index_keys,
                                 size=digest.size, source_key=obj.key, source_etag=obj.etag,
                                 sequences={n: {"length": length, "md5": sequences.md5_of(n)}
                                            for n, length in sequences.lengths.items()})
        store.write_bytes(f"{REFERENCE_REGISTRY_PREFIX}{digest.sha256}.json", record.to_json())
        registered.append(record)
    return registered, waiting


def choose_reference(bam_uri: str, header: dict, references: list[ReferenceRecord], *,
                     check_md5: bool = True) -> ReferenceRecord:
    """The registered reference that holds most of the BAM's @SQ sequences with matching lengths (and md5s).

    A reference whose names and lengths fit but whose md5s disagree is named in the error: it is the
    commonest mistake (the right assembly from a different source), and CRAM would not decode with it.
    """
    fitting, disagreeing = [], []
    for ref in references:
        sequences = ref.as_sequences(Path(ref.file_name))
        try:
            check_reference(bam_uri, header, sequences, check_md5=check_md5)
        except AlignmentFileError as error:
            if error.code == "reference_mismatch" and "M5 disagreement" in str(error):
                disagreeing.append(error)
            continue
        fitting.append((sum(1 for sq in header.get("SQ", []) if sq["SN"] in sequences.lengths), ref.registered_at, ref))
    if fitting:
        return max(fitting, key=lambda item: (item[0], item[1]))[2]
    if disagreeing:
        raise AlignmentFileError(bam_uri, f"{disagreeing[0].detail.problem} (registered reference); land the exact "
                                 "FASTA the reads were aligned to", code="reference_mismatch")
    names = ", ".join(f"{sq['SN']} ({sq['LN']} bp)" for sq in header.get("SQ", [])[:3])
    raise AlignmentFileError(bam_uri, f"no registered reference fits this BAM's @SQ lines ({names}, ...): "
                             f"land the FASTA it was aligned to, with its .fai, under {LANDING_REFERENCES_PREFIX}",
                             code="reference_missing")


def register_alignment(store, record: AlignmentRecord, pseudonymous: bool = False) -> AlignmentRecord:
    """Check the landed BAM is complete and readable, copy it into ``raw/bam/`` and describe it.

    Reads only the header and the last 28 bytes; the copy is server-side on S3. ``pseudonymous``: the
    copy (and so the CRAM) is named ``<alignment_id>.bam``, not after the uploaded file (docs/phi.md).
    """
    uri = store.uri(record.source_key)
    head = store.head(record.source_key)
    if head is None:
        raise AlignmentFileError(uri, "the landed file is gone (deleted or renamed since it landed)",
                                 code="unreadable_input")
    require_bgzf_eof(uri, head.size, store.read_tail(record.source_key, len(BGZF_EOF)))
    with store.open_read(record.source_key) as stream:
        header = read_bam_header(stream, uri)
    record.source_etag, record.version = head.etag, version_token(head.etag)
    record.raw_key = raw_bam_key(record.alignment_id, record.version,
                                 stored_file_name(record.source_key, pseudonymous, record.alignment_id))
    record.recognised_as = None
    if not store.exists(record.raw_key):
        earlier = same_content_version(store, record.alignment_id, record.source_key, head.size)
        if earlier is not None:  # the same bytes landed again: that version, not a second copy and CRAM
            (record.version, record.raw_key), record.recognised_as = earlier, earlier[0]
        else:
            store.copy(record.source_key, record.raw_key)
    mark_copied_into_raw(store, record.source_key, head.etag, record.raw_key)
    record.raw_uri, record.size = store.uri(record.raw_key), head.size
    record.sort_order = header.get("HD", {}).get("SO", "unknown")
    record.samples = sorted({rg.get("SM", "") for rg in header.get("RG", []) if rg.get("SM")})
    record.read_groups = len(header.get("RG", []))
    record.sequence_header = [{k: sq[k] for k in ("SN", "LN", "M5") if k in sq} for sq in header.get("SQ", [])]
    record.registered_at, record.status, record.reason = utc_now(), "registered", None
    return record


def quarantine_alignment(store, record: AlignmentRecord, error: AlignmentFileError, extra: dict | None = None) -> str:
    """Write the reason a BAM was refused; the BAM itself stays where it is, untouched and untagged
    (copying a 100 GB file aside to say it is bad would only double the bill)."""
    prefix = alignment_quarantine_prefix(record.alignment_id, record.version or version_token(record.source_etag))
    reason = {**error.detail.as_dict(), "alignment_id": record.alignment_id, "source_uri": record.source_uri,
              "raw_uri": record.raw_uri, "quarantined_at": utc_now(), **(extra or {})}
    key = prefix + "reason.json"
    store.write_bytes(key, json.dumps(reason, indent=2, sort_keys=True).encode())
    record.status, record.reason = "quarantined", str(error)
    save_alignment(store, record)
    return store.uri(key)
