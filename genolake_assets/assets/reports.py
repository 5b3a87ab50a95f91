"""Cohort reports: SQL from ``genolake_assets/queries`` run by the profile's engine, kept in the lake."""

import base64
import re
import shutil
import time

import dagster as dg
from pydantic import Field

from genolake_assets.assets.shared import (
    COLUMN_SCHEMA,
    ROW_COUNT,
    URI,
    arrow_columns,
    link,
    table_schema,
)
from genolake_assets.lib.lake.layout import REPORTS_PREFIX
from genolake_assets.lib.reports.output import (REPORT_COLUMNS, markdown_code_block, markdown_table,
                                                write_report_files)
from genolake_assets.queries import render
from genolake_assets.resources.lake.lake import LakeResource
from genolake_assets.resources.sql.sql_engine import QueryEngine

_ASSEMBLY = re.compile(r"^[A-Za-z0-9_.-]{1,40}\Z")
MAX_ROWS = 10_000


class DrugResponseReportConfig(dg.Config):
    sample_pattern: str = Field(default="%", description="SQL LIKE pattern on the VCF sample name (% any, _ one char)")
    significance_pattern: str = Field(
        default="%drug response%",
        description="SQL LIKE pattern on ClinVar's clinical significance, case-insensitive")
    assembly: str = Field(default="GRCh38", description="Reference assembly of the samples and ClinVar rows")
    limit: int = Field(default=50, description="Rows kept, by called frequency")


def _check(config: DrugResponseReportConfig) -> None:
    if not _ASSEMBLY.match(config.assembly):
        raise dg.Failure(f"assembly {config.assembly!r} is not an assembly name (e.g. GRCh38)")
    if not 1 <= config.limit <= MAX_ROWS:
        raise dg.Failure(f"limit must be between 1 and {MAX_ROWS}, not {config.limit}")
    for name in ("sample_pattern", "significance_pattern"):
        if not getattr(config, name):
            raise dg.Failure(f"{name} must not be empty (use % for everything)")


@dg.asset(
    deps=["cohort_variants", "samples_table", "clinvar_table"],
    group_name="reports", kinds={"sql", "duckdb", "athena", "parquet"}, owners=["team:genomics-data-engineering"],
    description="The cohort drug-response report: for a sub-population, the frequency of each genotype at "
                "ClinVar variants whose clinical significance matches a pattern, with the seed's frequency "
                "(carriers / all samples) beside the called one (carriers / samples called or covered by a "
                "reference block there). Top N, as Parquet, CSV and a chart.",
)
def drug_response_report(context: dg.AssetExecutionContext, config: DrugResponseReportConfig,
                         lake: LakeResource, sql: QueryEngine) -> dg.MaterializeResult:
    _check(config)
    started = time.perf_counter()
    statement = render("drug_response_report", sample_pattern=config.sample_pattern,
                       significance_pattern=config.significance_pattern, assembly=config.assembly,
                       result_limit=config.limit)
    result = sql.run(statement)
    table = result.table
    store = lake.store()
    folder = lake.scratch / "reports" / context.run_id
    files = write_report_files(table, folder, "drug_response_report")
    uris = {}
    for kind, path in files.items():
        run_key = f"{REPORTS_PREFIX}drug_response/runs/{context.run_id}/{path.name}"
        latest_key = f"{REPORTS_PREFIX}drug_response/latest/{path.name}"
        store.upload(path, run_key)
        store.copy(run_key, latest_key)  # server-side on S3: the file crosses the network once
        uris[kind] = store.uri(latest_key)
    chart = base64.b64encode(files["png"].read_bytes()).decode()
    shutil.rmtree(folder, ignore_errors=True)
    rows = table.to_pylist()
    return dg.MaterializeResult(metadata={
        "rows": table.num_rows, ROW_COUNT: table.num_rows,
        COLUMN_SCHEMA: table_schema(arrow_columns(table.schema), REPORT_COLUMNS),
        "sample_pattern": config.sample_pattern, "significance_pattern": config.significance_pattern,
        "assembly": config.assembly, "limit": config.limit,
        "cohort_samples": rows[0]["cohort_samples"] if rows else _cohort_size(sql, config),
        "report": dg.MetadataValue.md(markdown_table(table)),
        "chart": dg.MetadataValue.md(f"![seed vs called frequency](data:image/png;base64,{chart})"),
        "parquet_uri": link(uris["parquet"]), "csv_uri": link(uris["csv"]), "chart_uri": link(uris["png"]),
        URI: link(uris["parquet"]), "run_uri": link(store.uri(f"{REPORTS_PREFIX}drug_response/runs/{context.run_id}")),
        "seconds": round(time.perf_counter() - started, 3),
        # The statement holds the user's patterns: a fence they cannot close (issue 21).
        "query": dg.MetadataValue.md(markdown_code_block(statement, "sql")),
        **result.metadata(),
    })


def _cohort_size(sql: QueryEngine, config: DrugResponseReportConfig) -> int:
    """The sub-population's size, so an empty report still says how many samples it looked at."""
    statement = render("cohort_size", sample_pattern=config.sample_pattern, assembly=config.assembly)
    return int(sql.run(statement).table.column(0)[0].as_py())


report_job = dg.define_asset_job(
    name="drug_response",
    selection=dg.AssetSelection.assets(drug_response_report),
    description="Run the cohort drug-response report (set the sample and significance patterns in the config).",
)
