"""The code location loads as `dagster dev` would load it."""

import dagster as dg


def test_definitions_load_with_the_local_profile(lake_home):
    from genolake_assets.definitions import defs

    dg.Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"raw_vcf", "sample_variants", "sample_reference_blocks", "variants_table", "reference_blocks_table",
            "samples_table", "clinvar_source", "clinvar_variants", "clinvar_table", "drug_response_report", "cohort_variants"} <= keys
    graph = defs.resolve_asset_graph()
    report_parents = {k.to_user_string() for k in graph.get(dg.AssetKey("drug_response_report")).parent_keys}
    assert report_parents == {"cohort_variants", "samples_table", "clinvar_table"}
    assert defs.get_sensor_def("landing_sensor")
    assert defs.resolve_job_def("ingest_samples").partitions_def.name == "samples"
    assert {j.name for j in defs.jobs} >= {"ingest_samples", "refresh_catalog", "refresh_clinvar", "drug_response",
                                         "refresh_cohort"}
