"""The manifest of the locus-ordered cohort table (docs/cohort-layout.md, ``registry/cohort/state.json``).

Readers trust the manifest to name the only files they read, and the writer deletes the folders
it lists as retired, so everything loaded from JSON is validated before it becomes a key.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

from genolake_assets.lib.lake.identifiers import require_safe_key, require_safe_sample_id
from genolake_assets.lib.lake.layout import COHORT_PREFIX, COHORT_STATE_KEY

BIN_SIZE = 1_000_000
STATE_KEY = COHORT_STATE_KEY

_CONTIG = re.compile(r"^[A-Za-z0-9_.-]+$")
_FILE_NAME = re.compile(r"^(delta|compact)-[0-9a-f]{12}\.parquet$")
_FOLDER = re.compile(r"^cohort/contig=([A-Za-z0-9_.-]+)/bin=([0-9]+)/gen=([0-9]+)/$")


def partition_key(contig: str, bin: int) -> str:
    """The manifest's key of a partition: ``<contig>/<bin>``."""
    return f"{contig}/{bin}"


def contig_folder_name(contig: str) -> str:
    """The contig as a folder name: itself when path-safe, else a slug plus a hash of the name.

    GRCh38 has contigs such as ``HLA-A*01:01:01:01`` that are not safe in object keys, and the VCF
    specification allows ``/`` (``chrUn/evil``) too; the rows keep the real name, only the folder is encoded
    (two names can never share a folder by accident). Existing lakes' folders keep their names.
    """
    if not isinstance(contig, str) or not contig:
        raise ValueError(f"contig {contig!r} cannot name a cohort partition")
    if _CONTIG.match(contig) and contig not in (".", ".."):
        return contig
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", contig).strip("._-")[:40] or "contig"
    return f"{slug}-{hashlib.sha256(contig.encode()).hexdigest()[:10]}"


def partition_folder(contig: str, bin: int, gen: int) -> str:
    """``cohort/contig=<contig folder name>/bin=<bin>/gen=<gen>/`` (see :func:`contig_folder_name`)."""
    folder_name = contig_folder_name(contig)
    if isinstance(bin, bool) or not isinstance(bin, int) or bin < 0:
        raise ValueError(f"bin {bin!r} of contig {contig!r} is not a non-negative integer")
    if isinstance(gen, bool) or not isinstance(gen, int) or gen < 1:
        raise ValueError(f"generation {gen!r} of partition {contig}/{bin} is not a positive integer")
    folder = f"{COHORT_PREFIX}contig={folder_name}/bin={bin}/gen={gen}/"
    require_safe_key(folder.rstrip("/"))
    return folder


def parse_folder(folder: str) -> tuple[str, int, int]:
    """(contig folder name, bin, gen) of a generation folder; raises ValueError for anything else."""
    match = _FOLDER.match(folder) if isinstance(folder, str) else None
    if match is None:
        raise ValueError(f"{folder!r} is not a cohort generation folder")
    contig, bin, gen = match.group(1), int(match.group(2)), int(match.group(3))
    if partition_folder(contig, bin, gen) != folder:  # e.g. leading zeros in bin or gen
        raise ValueError(f"{folder!r} is not a canonical cohort generation folder")
    return contig, bin, gen


def _require_int(value, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


@dataclass
class PartitionState:
    contig: str
    bin: int
    gen: int
    rows: int
    files: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return partition_key(self.contig, self.bin)

    @property
    def folder(self) -> str:
        return partition_folder(self.contig, self.bin, self.gen)

    def file_keys(self) -> list[str]:
        folder = self.folder
        return [folder + name for name in self.files]

    def to_dict(self) -> dict:
        return {"contig": self.contig, "bin": self.bin, "gen": self.gen, "rows": self.rows,
                "files": list(self.files)}

    @classmethod
    def from_dict(cls, raw: dict) -> PartitionState:
        if not isinstance(raw, dict):
            raise ValueError(f"partition entry {raw!r} is not an object")
        files = raw.get("files")
        if not isinstance(files, list) or not all(isinstance(f, str) and _FILE_NAME.match(f) for f in files):
            raise ValueError(f"partition files {files!r} are not delta-/compact-<12 hex>.parquet names")
        if len(set(files)) != len(files):
            raise ValueError(f"partition files {files!r} repeat a name")
        state = cls(contig=raw.get("contig"), bin=_require_int(raw.get("bin"), "bin", 0),
                    gen=_require_int(raw.get("gen"), "gen", 1), rows=_require_int(raw.get("rows"), "rows", 0),
                    files=list(files))
        state.folder  # validates the contig
        return state

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> PartitionState:
        return cls.from_dict(json.loads(data))


@dataclass
class CohortState:
    version: int
    bin_size: int
    samples: dict[str, str] = field(default_factory=dict)
    partitions: dict[str, PartitionState] = field(default_factory=dict)
    # Folders this version stopped using: deleted once the next version is published.
    retired: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls, bin_size: int = BIN_SIZE) -> CohortState:
        return cls(version=0, bin_size=_require_int(bin_size, "bin_size", 1))

    def live_keys(self, partition: str | PartitionState) -> list[str]:
        """Object keys of a partition's live files (``partition`` is ``"<contig>/<bin>"`` or its state)."""
        if isinstance(partition, str):
            partition = self.partitions[partition]
        return partition.file_keys()

    def all_live_keys(self) -> list[str]:
        return [key for name in sorted(self.partitions) for key in self.live_keys(name)]

    def to_json(self) -> bytes:
        document = {
            "version": self.version,
            "bin_size": self.bin_size,
            "samples": dict(sorted(self.samples.items())),
            "partitions": {name: self.partitions[name].to_dict() for name in sorted(self.partitions)},
            "retired": list(self.retired),
        }
        return json.dumps(document, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> CohortState:
        raw = json.loads(data)
        if not isinstance(raw, dict):
            raise ValueError("cohort state is not a JSON object")
        samples = raw.get("samples", {})
        if not isinstance(samples, dict) or not all(isinstance(t, str) for t in samples.values()):
            raise ValueError("cohort state 'samples' must map sample ids to string tokens")
        for sample_id in samples:
            require_safe_sample_id(sample_id)
        partitions_raw = raw.get("partitions", {})
        if not isinstance(partitions_raw, dict):
            raise ValueError("cohort state 'partitions' must be an object")
        partitions = {}
        for name, entry in partitions_raw.items():
            partition = PartitionState.from_dict(entry)
            if partition.key != name:
                raise ValueError(f"partition {name!r} holds the entry of {partition.key!r}")
            partitions[name] = partition
        retired = raw.get("retired", [])
        if not isinstance(retired, list):
            raise ValueError("cohort state 'retired' must be a list")
        for folder in retired:
            parse_folder(folder)
        return cls(version=_require_int(raw.get("version"), "version", 0),
                   bin_size=_require_int(raw.get("bin_size"), "bin_size", 1),
                   samples=dict(samples), partitions=partitions, retired=list(retired))
