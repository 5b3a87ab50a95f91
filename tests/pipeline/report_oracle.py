"""An independent computation of the drug-response report: plain Python over the VCF text and the
ClinVar TSV, sharing no code with the converter, the catalog or the SQL.

Semantics it encodes (the report's contract):
- sub-population: samples whose VCF name matches the LIKE pattern, from files of the assembly;
- one row per (site, alt, genotype) where the genotype, downcoded to this alt as Hail's
  split_multi_hts does (this alt → 1, any other called allele → 0), carries the alt;
- multi-allelic records' alleles are min-rep'd (common suffix, then prefix, trimmed);
- called samples at a site: a fully called genotype there, a partial call carrying a non-reference
  allele, or a gVCF reference block (``<NON_REF>``-only record, INFO/END) covering the position.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COHORT_VCF = REPO / "tests" / "data" / "vcf" / "1kg_chr20_100samples_GRCh37.vcf"
GVCFS = sorted((REPO / "tests" / "data" / "vcf").glob("*.g.vcf.gz"))
VARIANT_SUMMARY = REPO / "data" / "clinvar" / "variant_summary_2021-01.first86362rows.txt.gz"


def like_to_regex(pattern: str) -> re.Pattern:
    parts = [".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern]
    return re.compile("^" + "".join(parts) + "$", re.S)


def min_rep(pos: int, ref: str, alt: str) -> tuple[int, str, str]:
    while len(ref) > 1 and len(alt) > 1 and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    while len(ref) > 1 and len(alt) > 1 and ref[0] == alt[0]:
        ref, alt, pos = ref[1:], alt[1:], pos + 1
    return pos, ref, alt


def _open(path: Path):
    return gzip.open(path, "rt") if path.name.endswith(".gz") else path.open()


def _alleles(gt_field: str) -> tuple[list[int | None], bool]:
    gt = gt_field.split(":")[0]
    phased = "|" in gt
    return [None if a == "." else int(a) for a in re.split(r"[/|]", gt)], phased


@dataclass
class Cohort:
    carriers: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(set)))
    """(chrom, pos, ref, alt) → genotype label → sample names."""
    called: dict = field(default_factory=lambda: defaultdict(set))
    """(chrom, pos) → sample names called there."""
    blocks: list = field(default_factory=list)
    """(chrom, start, end, sample) reference blocks."""
    samples: set = field(default_factory=set)


def read_vcf(path: Path, sample_regex: re.Pattern, cohort: Cohort) -> None:
    names: list[str] = []
    for line in _open(path):
        if line.startswith("##"):
            continue
        fields = line.rstrip("\n").split("\t")
        if line.startswith("#CHROM"):
            names = fields[9:]
            cohort.samples.update(n for n in names if sample_regex.match(n))
            continue
        chrom = fields[0].removeprefix("chr")
        pos, ref, alts = int(fields[1]), fields[3], fields[4].split(",")
        real = [(i, a) for i, a in enumerate(alts, 1) if a not in ("<NON_REF>", "*")]
        for name, value in zip(names, fields[9:]):
            if not sample_regex.match(name):
                continue
            alleles, phased = _alleles(value)
            if not real:
                end = re.search(r"(?:^|;)END=(\d+)", fields[7])
                cohort.blocks.append((chrom, pos, int(end.group(1)) if end else pos, name))
                continue
            for index, alt in real:
                site_pos, site_ref, site_alt = min_rep(pos, ref, alt) if len(alts) > 1 else (pos, ref, alt)
                down = [None if a is None else 1 if a == index else 0 for a in alleles]
                if None not in down or 1 in down:
                    cohort.called[(chrom, site_pos)].add(name)
                if 1 in down:
                    shown = down if phased else sorted(down, key=lambda a: (a is None, a))
                    label = ("|" if phased else "/").join("." if a is None else str(a) for a in shown)
                    cohort.carriers[(chrom, site_pos, site_ref, site_alt)][label].add(name)


def read_clinvar(path: Path, assembly: str, significance_regex: re.Pattern) -> dict:
    """(chrom, pos, ref, alt) → {variation_id, clinical_significance} for matching rows."""
    matches: dict = {}
    with _open(path) as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        col = {name: i for i, name in enumerate(header)}
        for row in reader:
            if row[col["Assembly"]] != assembly or row[col["PositionVCF"]] in ("-1", "na"):
                continue
            significance = row[col["ClinicalSignificance"]]
            if not significance_regex.match(significance.lower()):
                continue
            key = (row[col["Chromosome"]], int(row[col["PositionVCF"]]), row[col["ReferenceAlleleVCF"]],
                   row[col["AlternateAlleleVCF"]])
            entry = matches.setdefault(key, {"variation_ids": set(), "significances": set()})
            entry["variation_ids"].add(int(row[col["VariationID"]]))
            entry["significances"].add(significance)
    return matches


def expected_report(vcfs: list[Path], clinvar_tsv: Path, sample_pattern: str, significance_pattern: str,
                    assembly: str, limit: int) -> tuple[int, list[dict]]:
    """(sub-population size, report rows in report order) for VCF files all on ``assembly``."""
    cohort = Cohort()
    sample_regex = like_to_regex(sample_pattern)
    for path in vcfs:
        read_vcf(path, sample_regex, cohort)
    clinvar = read_clinvar(clinvar_tsv, assembly, like_to_regex(significance_pattern.lower()))
    rows = []
    for key, genotypes in cohort.carriers.items():
        if key not in clinvar:
            continue
        chrom, pos, ref, alt = key
        called = set(cohort.called[(chrom, pos)])
        called |= {s for (c, start, end, s) in cohort.blocks if c == chrom and start <= pos <= end}
        for genotype, carriers in genotypes.items():
            rows.append({
                "chromosome": chrom, "pos": pos, "ref": ref, "alt": alt, "genotype": genotype,
                "samples_with_genotype": len(carriers), "cohort_samples": len(cohort.samples),
                "called_samples": len(called),
                "seed_frequency": len(carriers) / len(cohort.samples),
                "called_frequency": len(carriers) / len(called),
                "variation_id": min(clinvar[key]["variation_ids"]),
                "clinical_significance": "; ".join(sorted(clinvar[key]["significances"])),
            })
    rows.sort(key=lambda r: (-r["called_frequency"], -r["seed_frequency"], r["chromosome"], r["pos"], r["alt"],
                             r["genotype"]))
    return len(cohort.samples), rows[:limit]


def derived_clinvar(path: Path) -> Path:
    """Real ClinVar rows re-pointed at sites of the bundled VCFs (*derived*; the real 2021 file has no
    drug-response entry at them): every gVCF variant site (GRCh38), where samples differ between
    carrying, reference blocks and no coverage, and every cohort site with a no-call (GRCh37)."""
    with gzip.open(VARIANT_SUMMARY, "rt") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        template = next(r for r in reader if "drug response" in r[header.index("ClinicalSignificance")])
    col = {name: i for i, name in enumerate(header)}
    sites = []
    gvcf_cohort = Cohort()
    for vcf in GVCFS:
        read_vcf(vcf, like_to_regex("%"), gvcf_cohort)
    sites += [("GRCh38", key) for key in gvcf_cohort.carriers]
    cohort = Cohort()
    read_vcf(COHORT_VCF, like_to_regex("%"), cohort)
    sites += [("GRCh37", key) for key in cohort.carriers if len(cohort.called[key[:2]]) < 100]
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", quoting=csv.QUOTE_NONE, lineterminator="\n")
    writer.writerow(header)
    for number, (assembly, (chrom, pos, ref, alt)) in enumerate(sites):
        row = list(template)
        row[col["Assembly"]], row[col["Chromosome"]] = assembly, chrom
        row[col["PositionVCF"]], row[col["ReferenceAlleleVCF"]], row[col["AlternateAlleleVCF"]] = str(pos), ref, alt
        row[col["VariationID"]] = str(900_000_000 + number)
        row[col["ClinicalSignificance"]] = "drug response" if number % 3 else "Pathogenic, drug response"
        writer.writerow(row)
    with gzip.open(path, "wt") as handle:
        handle.write(out.getvalue())
    return path
