"""Which sequencer files move to the lake: DataSync include filters, and the same rules locally.

Pure (no boto3, no Dagster): the DataSync resource sends these patterns to AWS, and the local copier
applies them with :func:`matches`, so both profiles transfer the same files.

DataSync filter semantics relied on here (AWS DataSync User Guide, "Transferring specific files,
objects, and folders by using filters", https://docs.aws.amazon.com/datasync/latest/userguide/filtering.html;
FilterRule API reference, https://docs.aws.amazon.com/datasync/latest/userguide/API_FilterRule.html):

- filters are relative to the source location, start with "/" and are case sensitive;
- "/dir" and "/dir/" both match the folder *and its contents*;
- "*" matches zero or more characters ("/movies_folder*" matches /movies_folder and /movies_folder1);
- one filter string holds patterns joined by "|", at most 102,400 characters, and StartTaskExecution
  takes at most one include FilterRule (botocore's datasync model: ``Includes`` max 1).

Paths containing "|" (the separator), "*" (the wildcard; a manifest may end in "/*") or "\\" are rejected
rather than escaped: DataSync's escaping rules are not reproduced here, so the two profiles cannot disagree.

Configuration: the TOML file named by ``GENOLAKE_TRANSFER_CONFIG``; keys are TransferConfig's fields,
optionally under a ``[transfer]`` table::

    transfer_days = 3
    task_arn = "arn:aws:datasync:eu-west-1:123456789012:task/task-0123456789abcdef0"
    source_root = "sequencers"          # local profile; relative to this file's folder
    [[sequencer_paths]]
    name = "miseq"
    path = "/MiSeq/Output"              # relative to the share root
    [[sequencer_paths]]
    name = "nextseq2000"
    path = "/NextSeq2000/Output"
    date_format = "%Y%m%d"              # NextSeq 1000/2000, NovaSeq X name runs YYYYMMDD_...
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

from genolake_assets.lib.lake.identifiers import InvalidIdentifierError, require_safe_key
from genolake_assets.lib.lake.layout import LANDING_SEQUENCERS_PREFIX

CONFIG_ENV_VAR = "GENOLAKE_TRANSFER_CONFIG"
FILTER_TYPE = "SIMPLE_PATTERN"
FILTER_SEPARATOR = "|"
FILTER_VALUE_MAX_CHARS = 102_400
MAX_MANIFEST_PATHS = 1_000
# Illumina run folders: YYMMDD (MiSeq, NextSeq 500/550, iSeq) or YYYYMMDD (NextSeq 1000/2000, NovaSeq X).
DATE_FORMATS = ("%y%m%d", "%Y%m%d")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_TASK_ARN = re.compile(  # StartTaskExecution's TaskArn pattern, from botocore's datasync service model
    r"^arn:(aws|aws-cn|aws-us-gov|aws-eusc|aws-iso|aws-iso-b):datasync:[a-z\-0-9]+:[0-9]{12}:task/task-[0-9a-f]{17}\Z")


class TransferConfigError(ValueError):
    """A transfer configuration that would transfer the wrong files, or none."""


class ManifestError(ValueError):
    """An ad-hoc manifest that must not start a transfer; names the manifest and the offending line."""

    def __init__(self, source: str, line: int | None, problem: str):
        self.source, self.line, self.problem = source, line, problem
        where = f"manifest {source}" + (f", line {line}" if line is not None else "")
        super().__init__(f"{where}: {problem}")


def _share_path_problem(path: str) -> str | None:
    """Why ``path`` is not a safe share-relative path ("/a/b"), or None. "/" (the share root) is fine."""
    if not isinstance(path, str) or not path.startswith("/"):
        return f"{path!r} must start with '/' (paths are relative to the share root)"
    for column, char in enumerate(path, start=1):
        if not char.isprintable():  # tabs, CR, NUL, bidi overrides: invisible in a review of the file
            return f"control or non-printable character U+{ord(char):04X} at column {column}"
    for char in "|\\*":
        if char in path:
            return f"{path!r} contains {char!r}, which DataSync filters treat as special"
    if path != "/" and any(seg in ("", ".", "..") for seg in path[1:].removesuffix("/").split("/")):
        return f"{path!r} has an empty, '.' or '..' segment"
    return None


def _strip_slash(path: str) -> str:
    return path.rstrip("/") or "/"  # DataSync: "/dir/" is the same as "/dir"


def _require_name(what: str, value: object) -> None:
    # Names end up in run tags, metadata and log lines; keep them plain.
    if not isinstance(value, str) or not _NAME.match(value) or ".." in value:
        raise TransferConfigError(f"{what} {value!r} must match {_NAME.pattern} and contain no '..'")


def _check_positive_int(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise TransferConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class SequencerPath:
    """One sequencer's output folder on the share; run folders under it start with a date."""

    name: str
    path: str
    date_format: str = "%y%m%d"
    instrument: str = ""

    def __post_init__(self) -> None:
        _require_name("sequencer name", self.name)
        if problem := _share_path_problem(self.path):
            raise TransferConfigError(f"sequencer {self.name!r} path: {problem}")
        object.__setattr__(self, "path", _strip_slash(self.path))
        if self.date_format not in DATE_FORMATS:
            raise TransferConfigError(f"sequencer {self.name!r} date_format {self.date_format!r} not in {DATE_FORMATS}")
        if self.instrument:
            _require_name(f"sequencer {self.name!r} instrument", self.instrument)


@dataclass(frozen=True)
class TransferConfig:
    """Where the sequencers write, how many days of run folders to keep transferring, and where they land."""

    sequencer_paths: tuple[SequencerPath, ...]
    transfer_days: int = 3
    task_arn: str | None = None
    source_root: str | None = None  # local profile: the folder that plays the NFS/SMB share
    destination_prefix: str = LANDING_SEQUENCERS_PREFIX
    adhoc_prefix: str = "adhoc/"
    execution_timeout_minutes: int = 360
    quiet_seconds: int = 60  # local copier: skip files modified more recently (still being written)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sequencer_paths", tuple(self.sequencer_paths))
        for sequencer in self.sequencer_paths:
            if not isinstance(sequencer, SequencerPath):
                raise TransferConfigError(f"sequencer_paths must hold SequencerPath values, got {sequencer!r}")
        for attribute in ("name", "path"):
            values = [getattr(s, attribute) for s in self.sequencer_paths]
            if duplicates := sorted({v for v in values if values.count(v) > 1}):
                raise TransferConfigError(f"sequencer {attribute}s must be unique; repeated: {duplicates}")
        _check_positive_int("transfer_days", self.transfer_days, 1)
        _check_positive_int("execution_timeout_minutes", self.execution_timeout_minutes, 1)
        _check_positive_int("quiet_seconds", self.quiet_seconds, 0)
        if self.task_arn is not None and not _TASK_ARN.match(str(self.task_arn)):
            raise TransferConfigError(f"task_arn {self.task_arn!r} is not a DataSync task ARN")
        if self.source_root is not None and not str(self.source_root).strip():
            raise TransferConfigError(f"source_root must be a non-empty path, got {self.source_root!r}")
        for attribute in ("destination_prefix", "adhoc_prefix"):
            prefix = getattr(self, attribute)
            try:
                if not isinstance(prefix, str) or not prefix.endswith("/"):
                    raise InvalidIdentifierError(f"{prefix!r} must end with '/'")
                require_safe_key(prefix[:-1])
            except InvalidIdentifierError as exc:
                raise TransferConfigError(f"{attribute}: {exc}") from None
        # Fail at load time, not at the first schedule tick, if the window cannot fit one filter.
        window = FILTER_SEPARATOR.join(dated_include_patterns(self, date(2000, 1, 1)))
        if len(window) > FILTER_VALUE_MAX_CHARS:
            raise TransferConfigError(f"{len(self.sequencer_paths)} sequencer paths x {self.transfer_days} days "
                                      f"need {len(window)} filter characters; DataSync allows {FILTER_VALUE_MAX_CHARS}")

    @classmethod
    def from_mapping(cls, data: Mapping, base_dir: Path | None = None) -> TransferConfig:
        """Build from parsed TOML; a relative ``source_root`` is resolved against ``base_dir``."""
        if set(data) == {"transfer"} and isinstance(data["transfer"], Mapping):
            data = data["transfer"]
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(data) - known):
            raise TransferConfigError(f"unknown setting(s) {unknown}; expected some of {sorted(known)}")
        values = dict(data)
        entries = values.pop("sequencer_paths", [])
        if not isinstance(entries, list):
            raise TransferConfigError("sequencer_paths must be an array of tables ([[sequencer_paths]])")
        sequencers, entry_keys = [], sorted(f.name for f in fields(SequencerPath))
        for index, entry in enumerate(entries, start=1):
            if not isinstance(entry, Mapping) or set(entry) - set(entry_keys):
                raise TransferConfigError(f"sequencer_paths entry {index} must be a table with keys from {entry_keys}")
            try:
                sequencers.append(SequencerPath(**entry))
            except TypeError as exc:  # a missing name or path
                raise TransferConfigError(f"sequencer_paths entry {index}: {exc}") from None
        root = values.get("source_root")
        if isinstance(root, str) and root.strip() and base_dir is not None:
            values["source_root"] = str((base_dir / Path(root).expanduser()).resolve())
        return cls(sequencer_paths=tuple(sequencers), **values)

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> TransferConfig:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            return cls.from_mapping(data, base_dir=path.parent.resolve())
        except FileNotFoundError:
            raise TransferConfigError(f"transfer config {path} does not exist") from None
        except OSError as exc:
            raise TransferConfigError(f"cannot read transfer config {path}: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, TransferConfigError) as exc:
            raise TransferConfigError(f"transfer config {path}: {exc}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TransferConfig:
        """The config named by GENOLAKE_TRANSFER_CONFIG; unset → no sequencer paths (nothing is transferred)."""
        location = (os.environ if environ is None else environ).get(CONFIG_ENV_VAR, "").strip()
        return cls.from_toml(location) if location else cls(sequencer_paths=())


def dated_include_patterns(config: TransferConfig, today: date) -> list[str]:
    """Run folders dated within the last ``transfer_days`` days (today inclusive), for every sequencer path.

    A run is still being written for hours to days, so the window re-includes recent runs on every tick;
    DataSync only copies what changed since the last execution.
    """
    return [f"{sequencer.path.rstrip('/')}/{today - timedelta(days=back):{sequencer.date_format}}_*"
            for sequencer in config.sequencer_paths for back in range(config.transfer_days)]


def include_filter(patterns: Iterable[str]) -> list[dict]:
    """The ``Includes`` argument for StartTaskExecution: a single SIMPLE_PATTERN rule."""
    patterns = list(patterns)
    if not patterns:  # an empty include filter would make DataSync transfer the whole share
        raise ValueError("no include patterns: refusing to build a filter that would transfer everything")
    for pattern in patterns:
        if not str(pattern).startswith("/") or FILTER_SEPARATOR in pattern or "\x00" in pattern:
            raise ValueError(f"include pattern {pattern!r} must start with '/' and contain no '|' or NUL")
    value = FILTER_SEPARATOR.join(patterns)
    if len(value) > FILTER_VALUE_MAX_CHARS:
        raise ValueError(f"include filter of {len(patterns)} patterns is {len(value)} characters; "
                         f"DataSync allows {FILTER_VALUE_MAX_CHARS}")
    return [{"FilterType": FILTER_TYPE, "Value": value}]


@lru_cache(maxsize=256)
def _include_parts(patterns: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """Each pattern (trailing "/" dropped) as its literal pieces between "*"s."""
    if bad := [p for p in patterns if not str(p).startswith("/")]:  # "" would otherwise match everything
        raise ValueError(f"include patterns must start with '/': {bad}")
    return tuple(tuple(p.rstrip("/").split("*")) for p in patterns)


def _matches_one(path: str, parts: tuple[str, ...]) -> bool:
    """Does ``parts`` (a pattern split at "*") match ``path`` itself or one of its ancestor folders?

    A folder include covers its contents: the pattern must match a prefix ``path[:end]`` where ``end`` is
    the path's length or the position of a "/". "*" matches any characters, "/" included. No backtracking:
    the first piece must start the prefix, the middle pieces are placed leftmost one after the other
    (``str.find``; any placement that fits leaves room for the leftmost one), and the last piece must end
    the prefix after them. Time is O(len(path) x len(pattern)) at worst, where a backtracking regex
    is exponential in the number of "*"s (``/*a*a*a*a*a*a*a*a*a*a*Z`` took 24 s on one path).
    """
    first, last = parts[0], parts[-1]
    if len(parts) == 1:
        return path.startswith(first) and (len(path) == len(first) or path[len(first)] == "/")
    if not path.startswith(first):
        return False
    start = len(first)
    for piece in parts[1:-1]:
        found = path.find(piece, start)
        if found < 0:
            return False
        start = found + len(piece)
    lowest_end = start + len(last)  # the prefix must hold the last piece after everything placed so far
    if lowest_end > len(path):
        return False
    if path.endswith(last, lowest_end - len(last)):
        return True
    end = path.find("/", lowest_end)
    while end >= 0:
        if path.startswith(last, end - len(last)):
            return True
        end = path.find("/", end + 1)
    return False


def matches(relative_path: str, patterns: Iterable[str]) -> bool:
    """Would a DataSync include filter of ``patterns`` transfer the share-relative ``relative_path``?"""
    if not relative_path.startswith("/"):
        raise ValueError(f"relative_path {relative_path!r} must start with '/' (relative to the share root)")
    patterns = tuple(patterns)
    return bool(patterns) and any(_matches_one(relative_path, parts) for parts in _include_parts(patterns))


def parse_manifest(text: str, config: TransferConfig, source: str) -> list[str]:
    """Include patterns for an ad-hoc manifest: one share-relative run folder or file per line.

    Blank lines and lines starting with "#" are ignored; a trailing "/" or "/*" is accepted and dropped
    (DataSync treats "P" as P and everything under it). Every path must lie strictly below a configured
    sequencer path. Raises :class:`ManifestError` for the first bad line; nothing is returned partially.
    """
    roots = [sequencer.path for sequencer in config.sequencer_paths]
    patterns: list[str] = []
    length = -len(FILTER_SEPARATOR)
    # split("\n") rather than splitlines(): splitlines would silently break a line at \v, \f, \x1c or
    # U+2028, while here they are reported as the control characters they are.
    for number, raw in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):  # BOM: Windows editors
        line = raw.removesuffix("\r").strip(" ")
        if not line or line.startswith("#"):
            continue
        path = line[:-2] if line.endswith("/*") else line
        if problem := _share_path_problem(path):
            raise ManifestError(source, number, problem)
        path = _strip_slash(path)
        if path in roots:
            raise ManifestError(source, number, f"{path} is a whole sequencer output folder; list its run folders")
        # Segment-wise, so /MiSeq/Output2/x is not below /MiSeq/Output.
        if not any(path.startswith(root.rstrip("/") + "/") for root in roots):
            configured = ", ".join(roots) or "none configured"
            raise ManifestError(source, number, f"{path} is not below a configured sequencer path ({configured})")
        if path in patterns:
            continue
        if len(patterns) == MAX_MANIFEST_PATHS:
            raise ManifestError(source, number, f"more than {MAX_MANIFEST_PATHS} paths; split the manifest")
        length += len(FILTER_SEPARATOR) + len(path)
        if length > FILTER_VALUE_MAX_CHARS:
            raise ManifestError(source, number, f"the paths so far exceed DataSync's filter limit "
                                                f"({FILTER_VALUE_MAX_CHARS} characters); split the manifest")
        patterns.append(path)
    if not patterns:
        raise ManifestError(source, None, "no paths (only blank lines or comments)")
    return patterns
