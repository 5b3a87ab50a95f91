"""The Dagster UI, in a real browser: Debian's Chromium, headless, driven by Playwright.

`dagster dev` (webserver + daemon) serves a temporary local-profile lake on 127.0.0.1 with three
real gVCFs landed and their sample partitions registered. The test walks what a user does: it reads
the lineage from a raw VCF to the report, launches a backfill of every sample partition from the
UI and waits for it to succeed, then opens one partition's materialisation and reads its row count.
A screenshot of each step goes to ``test-artifacts/browser/``.
"""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from genolake_assets.ui_server import DagsterDev

CHROMIUM = Path(os.environ.get("GENOLAKE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
BACKFILL_SECONDS = 420
FINISHED = ("Succeeded", "Failed", "Canceled", "Completed with failures")

playwright_api = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.exists():
    if os.environ.get("GENOLAKE_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"GENOLAKE_REQUIRE_BROWSER=1 but there is no Chromium at {CHROMIUM} "
                           "(Debian: apt-get install chromium)")
    pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; CI installs it)",
                allow_module_level=True)

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def lake_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("ui") / "home"
    prepared = subprocess.run([sys.executable, str(Path(__file__).with_name("prepare_lake.py")), str(home)],
                              capture_output=True, text=True, timeout=300)
    assert prepared.returncode == 0, prepared.stderr
    assert prepared.stdout.strip().split(",") == ["HG00187", "HG00190", "NA12249"]
    return home


@pytest.fixture(scope="module")
def server(lake_home):
    # Sensors stopped: the backfill launched from the UI is the only thing that converts the samples.
    dagster = DagsterDev(lake_home, _free_port(), extra_env={"GENOLAKE_SENSORS": "stopped"})
    dagster.start()
    try:
        yield dagster
    finally:
        dagster.stop()
        if dagster.log_path.exists():
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / "dagster-dev.log").write_bytes(dagster.log_path.read_bytes()[-2_000_000:])


@pytest.fixture(scope="module")
def page(server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def _open(page, server, path: str) -> None:
    page.goto(f"{server.url}{path}", wait_until="networkidle")
    skip = page.get_by_role("button", name="Skip")  # Dagster's one-time community dialog
    if skip.count():
        skip.click()


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _lineage(page, server, asset: str, scope: str, shot: str) -> None:
    _open(page, server, f"/assets/{asset}?view=lineage&lineageScope={scope}")
    depth_all = page.get_by_role("button", name="All", exact=True)
    if depth_all.is_enabled():
        depth_all.click()
    _visible(page, asset).first.wait_for()
    page.wait_for_timeout(1_000)  # let the layout settle before the screenshot
    _shot(page, shot)


def _visible(page, text: str):
    # The graph also renders each name into hidden elements it measures for truncation.
    return page.get_by_text(text, exact=True).locator("visible=true")


def _drawn(page, asset: str) -> bool:
    return _visible(page, asset).count() > 0


def test_1_the_graph_reads_as_the_lake_and_draws_raw_vcf_to_report(page, server):
    _open(page, server, "/asset-groups")
    for group in ("ingest", "variants", "annotations", "alignments", "reports"):
        _visible(page, group).first.wait_for()
    _shot(page, "1a-asset-groups")

    # Downstream of a sample's variants: the variants table (catalog), the samples table, the
    # locus-ordered cohort table the report reads, and the report.
    _lineage(page, server, "sample_variants", "downstream", "1b-sample-variants-downstream")
    for asset in ("variants_table", "samples_table", "cohort_variants", "drug_response_report"):
        assert _drawn(page, asset), f"{asset} is not drawn downstream of sample_variants"

    # Upstream of the report: back to the raw VCF, and nothing from the alignments.
    _lineage(page, server, "drug_response_report", "upstream", "1c-report-upstream")
    for asset in ("raw_vcf", "sample_variants", "samples_table", "cohort_variants", "clinvar_table"):
        assert _drawn(page, asset), f"{asset} is not drawn upstream of drug_response_report"
    assert not _drawn(page, "raw_bam")


def test_2_a_backfill_of_every_sample_launched_from_the_ui_succeeds(page, server):
    _open(page, server, "/locations/genolake/jobs/ingest_samples")
    page.get_by_role("button", name=re.compile("Materialize all")).first.click()
    dialog = page.locator("[role=dialog]").last
    dialog.get_by_role("button", name="All", exact=True).click()
    dialog.get_by_text("3 partitions").wait_for()
    _shot(page, "2a-backfill-dialog")
    dialog.get_by_role("button", name="Launch backfill").click()
    created = page.get_by_text(re.compile(r"Created backfill \w+"))
    created.wait_for()
    backfill_id = re.search(r"Created backfill (\w+)", created.inner_text()).group(1)

    _open(page, server, f"/runs/b/{backfill_id}")
    status = _backfill_status(page)
    waited = 0
    while status not in FINISHED and waited < BACKFILL_SECONDS:
        page.wait_for_timeout(5_000)
        waited += 5
        page.reload(wait_until="networkidle")
        status = _backfill_status(page)
    _shot(page, "2b-backfill-done")
    assert status == "Succeeded", f"backfill {backfill_id} is {status!r} after {waited} s"
    assert "100% completed" in page.inner_text("body")


def _backfill_status(page) -> str:
    """The backfill page's Status badge (its header reads "… Status <badge> Job name …")."""
    found = re.search(r"\nStatus\n([^\n]+)\n", page.inner_text("body"))
    return found.group(1).strip() if found else "(no status shown)"


def test_3_a_partitions_materialisation_shows_its_row_count(page, server, lake_home):
    _open(page, server, "/assets/sample_variants?view=partitions&partition=HG00187")
    page.get_by_text("Latest materialization").wait_for()
    rows_cell = page.locator("tr", has=page.get_by_text("rows", exact=True)).first
    rows_cell.wait_for()
    _shot(page, "3-partition-row-count")

    shown = int(re.sub(r"[^0-9]", "", rows_cell.locator("td").nth(1).inner_text()))
    parquet = lake_home / "lake" / "variants" / "sample_id=HG00187" / "part-00000.parquet"
    assert shown == pq.ParquetFile(parquet).metadata.num_rows
