"""Issue 21, High 1: run config cannot reconfigure a resource (Launchpad, GraphQL launchRun, any launcher).

Before, every ``ConfigurableResource`` field was run config: a launcher could write files anywhere through the
transfer, run any program through the compression runner, or switch pseudonymisation off.
"""

import dagster as dg
import pytest

# Fields an attacker would set, per resource: each one was accepted before (see the issue).
OVERRIDES = {
    "transfer": {"source_root": "/etc", "lake_root": "/", "destination_prefix": "etc/cron.d/"},
    "compression_runner": {"python": "/tmp/evil.sh"},
    "lake": {"pseudonymise": False},
    "converter": {"engine": "hail"},
    "cohort_engine": {"engine": "spark"},
    "catalog": {"database": "/tmp/other.duckdb"},
    "sql": {"database": "/tmp/other.duckdb"},
    "file_catalog": {"path": "/tmp/other.sqlite"},
}


@pytest.fixture
def defs(lake_home, monkeypatch):
    monkeypatch.setenv("GENOLAKE_SENSORS", "stopped")
    import genolake_assets.definitions as definitions

    return definitions.defs


def jobs_using(defs, resource_key: str) -> list:
    return [job for job in (defs.resolve_job_def(j.name) for j in defs.jobs)
            if resource_key in job.resource_defs]


@pytest.mark.parametrize("resource_key", sorted(OVERRIDES))
def test_every_job_refuses_run_config_for_a_resource(defs, resource_key):
    jobs = jobs_using(defs, resource_key)
    assert jobs, f"no job uses {resource_key}"
    for job in jobs:
        with pytest.raises(dg.DagsterInvalidConfigError) as refused:
            dg.validate_run_config(job, {"resources": {resource_key: {"config": OVERRIDES[resource_key]}}})
        message = str(refused.value)
        assert f"root:resources:{resource_key}:config" in message and "unexpected config entr" in message


def test_the_transfer_job_launched_with_an_override_writes_nothing(defs, lake_home, tmp_path):
    target = tmp_path / "etc"
    job = defs.resolve_job_def("start_sequencer_transfer")
    run_config = {"ops": {"start_sequencer_transfer": {"config": {"includes": ["/*"]}}},
                  "resources": {"transfer": {"config": {"lake_root": str(tmp_path), "destination_prefix": "etc/"}}}}

    with pytest.raises(dg.DagsterInvalidConfigError, match="unexpected config entry"):
        job.execute_in_process(run_config=run_config, instance=dg.DagsterInstance.ephemeral())
    assert not target.exists()


def test_a_resource_still_reaches_the_run_with_its_deployment_settings(defs, lake_home):
    from genolake_assets.definitions import resources

    @dg.asset
    def where_the_lake_is(lake: dg.ResourceParam[object]) -> str:
        return lake.store().root_uri

    result = dg.materialize([where_the_lake_is], resources={"lake": defs.resources["lake"]})

    assert result.output_for_node("where_the_lake_is") == resources["lake"].store().root_uri
    assert "run config cannot change it" in defs.resources["lake"].description
