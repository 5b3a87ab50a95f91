"""VCF header parsing: the header is the schema of the variant table."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import BinaryIO
from dataclasses import dataclass, field
from pathlib import Path

from genolake_assets.lib.errors import VcfFormatError
from genolake_assets.lib.limits import input_limits
from genolake_assets.lib.vcf.source import open_text_lines, text_lines_of_stream

FIXED_COLUMNS = ("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")
VALID_TYPES = {"Integer", "Float", "Flag", "String", "Character"}
_STRUCTURED = re.compile(r"^##(INFO|FORMAT)=<(.*)>\s*$")
_FIELD_ID = re.compile(r"^[A-Za-z_][0-9A-Za-z_.]*$|^1000G$")
_NUMBER = re.compile(r"^(?:[0-9]+|[ARG.])$")
_CONTIG = re.compile(r"^##contig=<(.*)>\s*$")
_DUPLICATES_NAMED = 10


@dataclass(frozen=True)
class FieldDef:
    """One ##INFO or ##FORMAT declaration."""

    section: str  # "INFO" or "FORMAT"
    id: str
    number: str
    type: str
    description: str
    line: int

    @property
    def is_list(self) -> bool:
        return self.number != "1" and self.type != "Flag"

    @property
    def column(self) -> str:
        prefix = "info_" if self.section == "INFO" else "fmt_"
        return prefix + self.id.lower()


@dataclass
class VcfHeader:
    path: str
    file_format: str
    info: dict[str, FieldDef]
    format: dict[str, FieldDef]
    contigs: list[str]
    contig_lengths: dict[str, int]
    samples: list[str]
    header_lines: int
    meta: list[str] = field(default_factory=list)

    @property
    def reference_genome(self) -> str | None:
        return guess_reference_genome(self)

    @property
    def caller(self) -> str | None:
        for line in self.meta:
            if line.startswith("##GATKCommandLine") or line.startswith("##GATKCommandLine."):
                match = re.search(r"ID=([^,>]+)", line)
                version = re.search(r'Version="?([^",>]+)', line)
                return f"GATK {match.group(1) if match else ''} {version.group(1) if version else ''}".strip()
            if line.startswith("##source="):
                return line.split("=", 1)[1].strip()
        return None


def _parse_structured(body: str) -> dict[str, str]:
    """Parse ``ID=DP,Number=1,Type=Integer,Description="..."`` honouring quotes."""
    values: dict[str, str] = {}
    key, buf, in_quotes, reading_key = "", [], False, True
    for char in body + ",":
        if reading_key:
            if char == "=":
                key, buf, reading_key = "".join(buf).strip(), [], False
            elif char == "," and not buf:
                continue
            else:
                buf.append(char)
        elif char == '"':
            in_quotes = not in_quotes
        elif char == "," and not in_quotes:
            values[key] = "".join(buf)
            buf, reading_key = [], True
        else:
            if char == "\\" and in_quotes:
                continue
            buf.append(char)
    return values


def _field_def(section: str, body: str, path: str, line_no: int) -> FieldDef:
    attrs = _parse_structured(body)
    fid, number, ftype = attrs.get("ID"), attrs.get("Number"), attrs.get("Type")
    where = f"{section}/{fid}" if fid else section
    if not fid or not _FIELD_ID.match(fid):
        raise VcfFormatError(path, f"##{section} declaration has an invalid ID {fid!r}", line=line_no, field=where,
                             code="invalid_header")
    if ftype not in VALID_TYPES:
        raise VcfFormatError(path, f"##{section} {fid} has unknown Type {ftype!r}", line=line_no, field=where,
                             code="invalid_header")
    if number is None or not _NUMBER.match(number):
        raise VcfFormatError(path, f"##{section} {fid} has invalid Number {number!r}", line=line_no, field=where,
                             code="invalid_header")
    if ftype == "Flag" and (section == "FORMAT" or number != "0"):
        raise VcfFormatError(path, f"##{section} {fid} is a Flag with Number={number}; a Flag must be an INFO field "
                             "with Number=0", line=line_no, field=where, code="invalid_header")
    if ftype != "Flag" and number == "0":
        raise VcfFormatError(path, f"##{section} {fid} has Number=0 but Type={ftype}; only Flags have no value",
                             line=line_no, field=where, code="invalid_header")
    return FieldDef(section, fid, number, ftype, attrs.get("Description", ""), line_no)


def _check_collisions(path: str, defs: dict[str, FieldDef]) -> None:
    seen: dict[str, FieldDef] = {}
    for fdef in defs.values():
        other = seen.get(fdef.column)
        if other is not None:
            raise VcfFormatError(path, f"{fdef.section} keys {other.id!r} and {fdef.id!r} collide as column "
                                 f"{fdef.column!r} after lower-casing", line=fdef.line,
                                 field=f"{fdef.section}/{fdef.id}", code="column_collision")
        seen[fdef.column] = fdef


def read_header(path: str | Path) -> VcfHeader:
    """Read and validate the header of a (bgzipped or plain) VCF file."""
    return parse_header(open_text_lines(path), str(path))


def read_header_stream(stream: BinaryIO, name: str) -> VcfHeader:
    """The header of a VCF read from a binary stream (an S3 object, say), gzip/BGZF or plain; only the
    header's bytes are read, each line at most ``GENOLAKE_MAX_LINE_BYTES``."""
    return parse_header(text_lines_of_stream(stream, name), name)


def parse_header(lines: Iterable[str], path: str) -> VcfHeader:
    """Parse header lines (stops at #CHROM); ``path`` names the file in errors. The header as a whole may be at
    most ``GENOLAKE_MAX_HEADER_BYTES`` long (lib/limits.py): more is binary junk, not a VCF."""
    max_bytes = input_limits().max_header_bytes
    info: dict[str, FieldDef] = {}
    fmt: dict[str, FieldDef] = {}
    contigs: list[str] = []
    lengths: dict[str, int] = {}
    meta: list[str] = []
    file_format = None
    consumed = 0
    for line_no, line in enumerate(lines, start=1):
        consumed += len(line)
        if consumed > max_bytes:
            raise VcfFormatError(path, f"no #CHROM line in the first {max_bytes} bytes (GENOLAKE_MAX_HEADER_BYTES): "
                                 "not a VCF", line=line_no, code="not_vcf")
        if line_no == 1:
            if not line.startswith("##fileformat=VCF"):
                raise VcfFormatError(path, "not a VCF: the first line is not '##fileformat=VCFv4.x'", line=1,
                                     code="not_vcf")
            file_format = line.strip().split("=", 1)[1]
            continue
        if line.startswith("##"):
            structured = _STRUCTURED.match(line)
            if structured:
                section, body = structured.groups()
                fdef = _field_def(section, body, path, line_no)
                target = info if section == "INFO" else fmt
                if fdef.id in target:
                    raise VcfFormatError(path, f"##{section} {fdef.id} is declared twice", line=line_no,
                                         field=f"{section}/{fdef.id}", code="invalid_header")
                target[fdef.id] = fdef
                continue
            contig = _CONTIG.match(line)
            if contig:
                attrs = _parse_structured(contig.group(1))
                if attrs.get("ID"):
                    contigs.append(attrs["ID"])
                    if attrs.get("length", "").isdigit():
                        lengths[attrs["ID"]] = int(attrs["length"])
                continue
            meta.append(line.rstrip("\n"))
            continue
        if line.startswith("#CHROM"):
            columns = line.rstrip("\r\n").split("\t")
            if tuple(columns[:8]) != FIXED_COLUMNS:
                raise VcfFormatError(path, f"the #CHROM line does not have the 8 fixed VCF columns: {columns[:8]}",
                                     line=line_no, code="invalid_header")
            samples = columns[9:] if len(columns) > 9 else []
            if len(columns) == 9 or (len(columns) > 9 and columns[8] != "FORMAT"):
                raise VcfFormatError(path, "column 9 must be FORMAT followed by sample columns", line=line_no,
                                     code="invalid_header")
            duplicates = sorted(name for name, count in Counter(samples).items() if count > 1)  # linear: 1M names
            if duplicates:
                more = f" and {len(duplicates) - _DUPLICATES_NAMED} more" if len(duplicates) > _DUPLICATES_NAMED else ""
                raise VcfFormatError(path, f"duplicate sample names {duplicates[:_DUPLICATES_NAMED]}{more}",
                                     line=line_no, code="invalid_header")
            _check_collisions(path, info)
            _check_collisions(path, fmt)
            return VcfHeader(path, file_format or "", info, fmt, contigs, lengths, samples, line_no, meta)
        raise VcfFormatError(path, "header ended without a #CHROM line", line=line_no, code="invalid_header")
    raise VcfFormatError(path, "the file is empty or has no #CHROM header line", code="empty_or_no_header")


_ASSEMBLY_HINTS = (
    ("GRCh38", re.compile(r"GRCh38|hg38|Homo_sapiens_assembly38", re.I)),
    ("GRCh37", re.compile(r"GRCh37|hg19|b37|human_g1k_v37|hs37d5", re.I)),
)
_CHR1_LENGTHS = {248956422: "GRCh38", 249250621: "GRCh37"}


def guess_reference_genome(header: VcfHeader) -> str | None:
    """The assembly named by ##reference / ##contig lines, by chr1's length, or by the file name."""
    for line in header.meta:
        if line.startswith(("##reference", "##assembly", "##GATKCommandLine")):
            for name, pattern in _ASSEMBLY_HINTS:
                if pattern.search(line):
                    return name
    for contig in ("1", "chr1"):
        if contig in header.contig_lengths:
            return _CHR1_LENGTHS.get(header.contig_lengths[contig])
    # Last resort, for headers that name no assembly at all (the bundled 1000 Genomes cohort):
    # labs put the build in file names, and an unknown build keeps a sample out of every
    # assembly-specific report.
    file_name = header.path.replace("\\", "/").rsplit("/", 1)[-1]
    for name, pattern in _ASSEMBLY_HINTS:
        if pattern.search(file_name):
            return name
    return None
