"""Writing a cohort report: Parquet, CSV, a markdown table and a PNG chart of the two frequencies."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from genolake_assets.lib.clinvar.schema import CLINVAR_COLUMNS

MARKDOWN_COLUMNS = ("chromosome", "pos", "ref", "alt", "genotype", "genes", "samples_with_genotype",
                    "called_samples", "cohort_samples", "seed_frequency", "called_frequency",
                    "clinical_significance")


def write_report_files(table: pa.Table, folder: Path, stem: str) -> dict[str, Path]:
    """Parquet, CSV and PNG files of the report in ``folder``; returns them by kind."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"parquet": folder / f"{stem}.parquet", "csv": folder / f"{stem}.csv", "png": folder / f"{stem}.png"}
    pq.write_table(table, paths["parquet"], compression="zstd")
    pa_csv.write_csv(table, paths["csv"])
    paths["png"].write_bytes(frequency_chart_png(table))
    return paths


# Inline markdown: emphasis, code, links and images ([, ], !), raw HTML and autolinks (<, >), entities (&),
# strikethrough (~), table cells (|) and the escape itself. Backslash-escaped, any of them shows as itself.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>!|~&#])")


def markdown_text(value) -> str:
    """Any text (a sample pattern, a ClinVar field, a name) as one line of literal markdown: special
    characters escaped, line breaks and other control characters turned into spaces, so it can neither
    start a heading, a list or a code fence nor become a link, an image or HTML."""
    text = "".join(c if c.isprintable() else " " for c in str(value))
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def markdown_code_block(text: str, language: str = "") -> str:
    """``text`` as a fenced code block that nothing inside can close: the fence is longer than the
    longest run of backticks in the text (CommonMark closes a fence only with one at least as long)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return markdown_text(value)


def markdown_table(table: pa.Table, max_rows: int = 50) -> str:
    if table.num_rows == 0:
        return "_No variant in the sub-population matches the significance pattern._"
    columns = [c for c in MARKDOWN_COLUMNS if c in table.column_names]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table.slice(0, max_rows).to_pylist():
        lines.append("| " + " | ".join(_cell(row[c]) for c in columns) + " |")
    return "\n".join(lines)


def frequency_chart_png(table: pa.Table, title: str = "Genotype frequency: seed vs called denominator") -> bytes:
    """Horizontal bars: both frequencies for each variant × genotype row (at most 25 rows drawn)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers or in CI
    from matplotlib import pyplot as plt

    rows = table.slice(0, 25).to_pylist()
    height = max(2.0, 0.38 * len(rows) + 1.2)
    figure, axes = plt.subplots(figsize=(9, height), dpi=100)
    try:
        if rows:
            labels = [f"{r['chromosome']}:{r['pos']} {r['ref']}>{r['alt']} {r['genotype']}" for r in rows][::-1]
            seed = [r["seed_frequency"] for r in rows][::-1]
            called = [r["called_frequency"] for r in rows][::-1]
            positions = range(len(rows))
            axes.barh([p + 0.2 for p in positions], called, height=0.4, label="carriers / called samples")
            axes.barh([p - 0.2 for p in positions], seed, height=0.4, label="carriers / all samples (seed)")
            axes.set_yticks(list(positions), labels, fontsize=8)
            axes.set_xlim(0, 1)
            axes.legend(loc="lower right", fontsize=8)
        else:
            axes.text(0.5, 0.5, "no matching variants", ha="center", va="center")
            axes.set_yticks([])
        axes.set_xlabel("frequency")
        axes.set_title(title, fontsize=10)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(figure)


REPORT_COLUMNS = {  # docs/clinvar-and-reports.md
    "chromosome": "Chromosome of the ClinVar variant",
    "pos": "VCF position",
    "ref": "Reference allele",
    "alt": "Alternate allele",
    "genotype": "The samples' split genotype for this ALT, unphased alleles sorted",
    "samples_with_genotype": "Samples of the sub-population with this genotype",
    "cohort_samples": "Samples in the sub-population",
    "called_samples": "Samples of the sub-population called or covered by a reference block here",
    "seed_frequency": "samples_with_genotype / cohort_samples (the seed pipeline's figure)",
    "called_frequency": "samples_with_genotype / called_samples",
    "variation_id": CLINVAR_COLUMNS["variation_id"],
    "rs_id": CLINVAR_COLUMNS["rs_id"],
    "genes": "Gene symbols of the ClinVar rows at this site",
    "clinical_significance": "ClinVar clinical significance",
    "review_status": "ClinVar review status",
    "phenotypes": "ClinVar conditions",
}
"""The UI's one line per column (Dagster column schema)."""
