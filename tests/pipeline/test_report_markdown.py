"""User text in the report's markdown stays text (issue 21 item 9): a sample pattern cannot close the
query's code fence, and report cells cannot become links, images, HTML or new table columns."""

from __future__ import annotations

import re

import dagster as dg
import pyarrow as pa
import pytest

from genolake_assets.assets.annotations import clinvar_source, clinvar_table, clinvar_variants
from genolake_assets.assets.reports import drug_response_report
from genolake_assets.assets.variants import cohort_variants
from genolake_assets.lib.reports.output import markdown_code_block, markdown_table, markdown_text
from tests.pipeline.helpers import ingest, refresh_tables, tick
from tests.pipeline.report_oracle import GVCFS, VARIANT_SUMMARY

HOSTILE_PATTERN = "x%'\n```\n# Owned\n![tracker](http://127.0.0.1:9/leak)\n<img src=x onerror=alert(1)>\n```\n"


def _closing_fence_lines(markdown: str) -> list[int]:
    """Lines (after the first) that would close the code block opened on the first line."""
    lines = markdown.split("\n")
    fence = re.match(r"(`{3,})", lines[0]).group(1)
    return [i for i, line in enumerate(lines[1:], start=1)
            if re.fullmatch(rf" {{0,3}}`{{{len(fence)},}}\s*", line)]


@pytest.fixture
def small_lake(instance, resources, land):
    land(GVCFS[0])
    for request in tick(instance, resources).run_requests:
        assert ingest(instance, resources, request.partition_key).success
    assert refresh_tables(instance, resources).success
    assert dg.materialize([cohort_variants], instance=instance, resources=resources).success
    assert dg.materialize([clinvar_source, clinvar_variants, clinvar_table], instance=instance, resources=resources,
                          run_config={"ops": {"clinvar_source": {"config": {"uri": str(VARIANT_SUMMARY)}}}}).success
    return instance, resources


def test_a_sample_pattern_cannot_break_out_of_the_query_block(small_lake):
    instance, resources = small_lake
    result = dg.materialize([drug_response_report], instance=instance, resources=resources,
                            run_config={"ops": {"drug_response_report": {"config": {
                                "sample_pattern": HOSTILE_PATTERN, "assembly": "GRCh38"}}}},
                            selection=[drug_response_report])
    assert result.success
    metadata = {k: v.value for k, v in result.get_asset_materialization_events()[0].materialization.metadata.items()}
    query = metadata["query"]
    assert "# Owned" in query  # the pattern is shown, as code
    assert _closing_fence_lines(query) == [len(query.split("\n")) - 1]  # only the last line closes the block
    assert metadata["rows"] == 0 and metadata["sample_pattern"] == HOSTILE_PATTERN


def test_report_cells_are_literal_text():
    table = pa.table({"chromosome": ["1"], "pos": [5], "ref": ["A"], "alt": ["G"], "genotype": ["0/1"],
                      "genes": ["ABC|x\n# Owned"],
                      "clinical_significance": ["![t](http://127.0.0.1:9/leak) <img src=x> [a](javascript:x) `c`"]})
    markdown = markdown_table(table)
    lines = markdown.split("\n")
    assert len(lines) == 3 and all(line.count("|") - line.count("\\|") == lines[0].count("|") for line in lines)
    unescaped = re.compile(r"(?<!\\)(!\[|<img|\]\(|`)")  # an image, HTML, a link target, code
    assert not unescaped.search(markdown), markdown
    assert "\\!\\[t\\]" in markdown and "\\<img" in markdown
    assert markdown_text("a\x1b[2Jb\u202ec") == "a \\[2Jb c"


def test_a_code_block_fence_outgrows_any_backticks_inside():
    block = markdown_code_block("a ``` b\n````\nc", "sql")
    assert block.startswith("`````sql\n") and block.endswith("\n`````")
    assert _closing_fence_lines(block) == [4]
