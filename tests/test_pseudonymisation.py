"""Pseudonymised sample identifiers (docs/phi.md): keyed-hash ids in every object key and partition key,
the real names only in the samples table, and reports that still filter and show by the real name.

The pipeline tests drive the real landing sensors and ingest/compression runs on the bundled VCFs and BAMs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from genolake_assets.assets.alignments import alignment_file_catalog, compressed_bam, raw_bam, reference_genomes
from genolake_assets.assets.variants import cohort_variants
from genolake_assets.demo import RANGE_END, RANGE_START
from genolake_assets.lib.lake.identifiers import (
    DEFAULT_POLICY,
    SAMPLE_ID_PATTERN,
    InvalidIdentifierError,
    SampleIdPolicy,
    is_safe_sample_id,
    parse_pseudonym_key,
    pseudonymous_id,
    pseudonymous_id_from_file,
    sample_id_for,
    sample_id_from_file,
)
from genolake_assets.lib.lake.quarantine import stored_file_name
from genolake_assets.lib.vcf.header import read_header
from genolake_assets.queries import render
from genolake_assets.resources.lake.lake import LakeResource
from genolake_assets.resources.lake.pseudonym_key import PseudonymKeyError, load_pseudonym_key
from genolake_assets.sensors.alignments import alignment_landing_sensor
from genolake_assets.settings import Settings
from tests.pipeline.helpers import INGEST_ASSETS, refresh_tables, tick
from tests.pipeline.report_oracle import COHORT_VCF, GVCFS, VARIANT_SUMMARY, expected_report

KEY_HEX = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
KEY = bytes.fromhex(KEY_HEX)
OTHER_KEY_HEX = "ff" * 32
PSEUDONYM = re.compile(r"^p[0-9a-f]{24}$")
DATA_BAM = Path(__file__).resolve().parent / "data" / "bam"


def pseudonymise(patch, key_hex: str = KEY_HEX) -> None:
    patch.setenv("GENOLAKE_PSEUDONYMISE", "1")
    patch.setenv("GENOLAKE_PSEUDONYM_KEY", key_hex)


def built_resources():
    from genolake_assets.resources.profile import build_resources

    return build_resources(Settings.from_env())


def name_tokens(names) -> set[str]:
    """What must not show up outside the restricted places: each name, its default id, and its parts."""
    tokens = set()
    for name in names:
        tokens |= {name, sample_id_for(name), *[part for part in name.split("::") if len(part) >= 5]}
    return tokens


# --- the ids -------------------------------------------------------------------------------------


def test_pseudonymous_id_is_p_plus_24_hex_of_the_hmac():
    expected = "p" + hmac.new(KEY, b"HG00187", hashlib.sha256).hexdigest()[:24]
    assert pseudonymous_id("HG00187", KEY) == expected
    assert PSEUDONYM.match(expected) and SAMPLE_ID_PATTERN.match(expected) and is_safe_sample_id(expected)


def test_pseudonymous_ids_are_stable_per_key_and_differ_between_keys_and_names():
    assert pseudonymous_id("C1046::HG02024", KEY) == pseudonymous_id("C1046::HG02024", KEY)
    assert pseudonymous_id("HG00187", KEY) != pseudonymous_id("HG00187", bytes.fromhex(OTHER_KEY_HEX))
    assert pseudonymous_id("C1046::HG02024", KEY) != pseudonymous_id("C1046__HG02024", KEY)
    unsafe = pseudonymous_id("../x'; drop", KEY)
    assert PSEUDONYM.match(unsafe)


def test_a_second_file_with_the_same_name_gets_another_pseudonymous_id():
    first = pseudonymous_id("NA12878", KEY)
    second = pseudonymous_id_from_file("NA12878", "landing/run2.vcf.gz", KEY)
    third = pseudonymous_id_from_file("NA12878", "landing/run3.vcf.gz", KEY)
    assert len({first, second, third}) == 3 and all(PSEUDONYM.match(i) for i in (second, third))
    assert "NA12878" not in second


def test_the_default_policy_is_the_unkeyed_mapping():
    for name in ("HG00187", "C1046::HG02024", "a b"):
        assert DEFAULT_POLICY.sample_id(name) == sample_id_for(name)
        assert DEFAULT_POLICY.sample_id_from_file(name, "landing/x.vcf") == sample_id_from_file(name, "landing/x.vcf")
    assert not DEFAULT_POLICY.pseudonymous


def test_a_keyed_policy_mints_pseudonyms_and_never_shows_its_key():
    policy = SampleIdPolicy(key=KEY)
    assert policy.pseudonymous and policy.sample_id("HG00187") == pseudonymous_id("HG00187", KEY)
    assert policy.sample_id_from_file("HG00187", "landing/b.vcf") == pseudonymous_id_from_file(
        "HG00187", "landing/b.vcf", KEY)
    assert KEY_HEX not in repr(policy) and repr(KEY) not in repr(policy)
    with pytest.raises(InvalidIdentifierError):
        policy.sample_id(" padded ")


@pytest.mark.parametrize("text", [KEY_HEX, KEY_HEX.upper(), base64.b64encode(KEY).decode(),
                                  base64.urlsafe_b64encode(KEY).decode().rstrip("="), f"  {KEY_HEX}\n"])
def test_keys_are_read_as_hex_or_base64(text):
    assert parse_pseudonym_key(text, "GENOLAKE_PSEUDONYM_KEY") == KEY


@pytest.mark.parametrize("text, message", [("", "is empty"), ("not a key!", "neither hex nor base64"),
                                           ("00ff" * 4, "at least 16")])
def test_bad_keys_are_refused_naming_the_source_not_the_key(text, message):
    with pytest.raises(ValueError) as error:
        parse_pseudonym_key(text, "GENOLAKE_PSEUDONYM_KEY")
    assert "GENOLAKE_PSEUDONYM_KEY" in str(error.value) and message in str(error.value)
    if text:
        assert text not in str(error.value)


def test_copies_lose_the_uploaders_file_name_only_when_pseudonymising():
    assert stored_file_name("landing/run1/HG00187.hg38.g.vcf.gz", False, "source") == "HG00187.hg38.g.vcf.gz"
    assert stored_file_name("landing/run1/HG00187.hg38.g.vcf.gz", True, "source") == "source.vcf.gz"
    assert stored_file_name("landing/NA12878.chr22.BAM", True, "p0123") == "p0123.bam"
    assert stored_file_name("landing/odd.txt", True, "source") == "source"


# --- configuration -------------------------------------------------------------------------------


def test_settings_off_by_default_and_resources_unchanged(lake_home):
    settings = Settings.from_env()
    assert not settings.pseudonymise
    lake = built_resources()["lake"]
    assert lake.pseudonymise is False and lake.pseudonym_key_file is None and lake.pseudonym_key_parameter is None
    assert lake.sample_id_policy() is DEFAULT_POLICY


def test_a_key_without_the_switch_is_ignored(lake_home, monkeypatch):
    monkeypatch.setenv("GENOLAKE_PSEUDONYM_KEY_PARAMETER", "genolake/pseudonym-key")
    assert not Settings.from_env().pseudonymise
    assert built_resources()["lake"].sample_id_policy() is DEFAULT_POLICY


def test_the_switch_without_a_key_is_refused_when_the_code_location_loads(lake_home, monkeypatch):
    monkeypatch.setenv("GENOLAKE_PSEUDONYMISE", "1")
    with pytest.raises(ValueError) as error:
        Settings.from_env()
    message = str(error.value)
    assert all(name in message for name in ("GENOLAKE_PSEUDONYM_KEY", "GENOLAKE_PSEUDONYM_KEY_FILE",
                                            "GENOLAKE_PSEUDONYM_KEY_PARAMETER"))


def test_two_keys_or_a_bad_switch_are_refused(lake_home, monkeypatch, tmp_path):
    pseudonymise(monkeypatch)
    monkeypatch.setenv("GENOLAKE_PSEUDONYM_KEY_FILE", str(tmp_path / "key"))
    with pytest.raises(ValueError, match="set only one of GENOLAKE_PSEUDONYM_KEY, GENOLAKE_PSEUDONYM_KEY_FILE"):
        Settings.from_env()
    monkeypatch.setenv("GENOLAKE_PSEUDONYMISE", "maybe")
    with pytest.raises(ValueError, match="GENOLAKE_PSEUDONYMISE must be 1 or 0"):
        Settings.from_env()


def test_a_key_file_is_read(lake_home, monkeypatch, tmp_path):
    key_file = tmp_path / "pseudonym.key"
    key_file.write_text(base64.b64encode(KEY).decode() + "\n")
    monkeypatch.setenv("GENOLAKE_PSEUDONYMISE", "true")
    monkeypatch.setenv("GENOLAKE_PSEUDONYM_KEY_FILE", str(key_file))
    lake = built_resources()["lake"]
    assert lake.pseudonymise and lake.pseudonym_key_file == str(key_file)
    assert lake.sample_id_policy().sample_id("HG00187") == pseudonymous_id("HG00187", KEY)
    assert KEY_HEX not in repr(lake) and base64.b64encode(KEY).decode() not in repr(lake)


def test_a_missing_key_file_is_named(monkeypatch, tmp_path):
    monkeypatch.delenv("GENOLAKE_PSEUDONYM_KEY", raising=False)
    with pytest.raises(PseudonymKeyError, match="GENOLAKE_PSEUDONYM_KEY_FILE: cannot read the key file"):
        load_pseudonym_key(key_file=str(tmp_path / "absent.key"))


def test_a_wrong_key_fails_the_sensor_tick_naming_the_variable(lake_home, monkeypatch, instance, data_vcf):
    pseudonymise(monkeypatch, key_hex="too-short")
    resources = built_resources()
    resources["lake"].store().upload(data_vcf / "HG00187.hg38.g.vcf.gz", "landing/HG00187.hg38.g.vcf.gz")
    with pytest.raises(Exception) as error:
        tick(instance, resources)
    assert "GENOLAKE_PSEUDONYM_KEY" in str(error.value) and "too-short" not in str(error.value)
    assert instance.get_dynamic_partitions("samples") == []
    assert not resources["lake"].store().exists("ingest/landing_index/HG00187.json")


def test_a_lake_told_to_pseudonymise_without_any_key_refuses_to_mint_ids(tmp_path, monkeypatch):
    monkeypatch.delenv("GENOLAKE_PSEUDONYM_KEY", raising=False)
    lake = LakeResource(home=str(tmp_path), pseudonymise=True)
    with pytest.raises(PseudonymKeyError, match="GENOLAKE_PSEUDONYMISE=1 needs the pseudonym key: set "
                                                "GENOLAKE_PSEUDONYM_KEY"):
        lake.sample_id_policy()


# --- the key in AWS (moto) -------------------------------------------------------------------------


def test_the_key_is_read_from_secrets_manager(moto_endpoint, monkeypatch):
    from genolake_assets.resources.lake.s3_store import aws_client

    monkeypatch.delenv("GENOLAKE_PSEUDONYM_KEY", raising=False)
    secrets = aws_client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1")
    arn = secrets.create_secret(Name=f"genolake/pseudonym-key-{KEY_HEX[:6]}", SecretString=KEY_HEX)["ARN"]
    binary = secrets.create_secret(Name="genolake/pseudonym-key-binary", SecretBinary=KEY)["ARN"]
    # What a CloudFormation GenerateSecretString (64 alphanumerics) produces reads as base64.
    generated = "Zx9Qm2Rt" * 8
    generated_arn = secrets.create_secret(Name="genolake/pseudonym-key-generated", SecretString=generated)["ARN"]

    lake = LakeResource(profile="local", home="/tmp/unused", pseudonymise=True, pseudonym_key_parameter=arn,
                        endpoint_url=moto_endpoint, region="us-east-1")
    assert lake.sample_id_policy().sample_id("HG00187") == pseudonymous_id("HG00187", KEY)
    assert load_pseudonym_key(parameter=binary, endpoint_url=moto_endpoint) == KEY
    assert load_pseudonym_key(parameter=generated_arn, endpoint_url=moto_endpoint) == base64.b64decode(generated)

    missing = arn.rsplit(":", 1)[0] + ":genolake/absent-AbCdEf"
    with pytest.raises(PseudonymKeyError) as error:
        load_pseudonym_key(parameter=missing, endpoint_url=moto_endpoint)
    assert "GENOLAKE_PSEUDONYM_KEY_PARAMETER" in str(error.value) and "ResourceNotFoundException" in str(error.value)


def test_the_key_is_read_from_an_ssm_secure_string(moto_endpoint, monkeypatch):
    from genolake_assets.resources.lake.s3_store import aws_client

    monkeypatch.delenv("GENOLAKE_PSEUDONYM_KEY", raising=False)
    ssm = aws_client("ssm", endpoint_url=moto_endpoint, region_name="us-east-1")
    ssm.put_parameter(Name="/genolake/pseudonym-key", Value=KEY_HEX, Type="SecureString", Overwrite=True)
    arn = "arn:aws:ssm:us-east-1:123456789012:parameter/genolake/pseudonym-key"
    assert load_pseudonym_key(parameter=arn, endpoint_url=moto_endpoint) == KEY


def test_the_aws_profile_lands_pseudonymously_with_the_key_in_secrets_manager(
        monkeypatch, tmp_path, moto_endpoint, bucket, instance):
    from genolake_assets.resources.lake.s3_store import aws_client

    secret = aws_client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1").create_secret(
        Name=f"genolake/{bucket}/pseudonym-key", SecretString=base64.b64encode(KEY).decode())["ARN"]
    for name, value in {"GENOLAKE_PROFILE": "aws", "GENOLAKE_HOME": str(tmp_path / "home"),
                        "GENOLAKE_S3_BUCKET": bucket, "GENOLAKE_S3_PREFIX": "lake", "AWS_ENDPOINT_URL": moto_endpoint,
                        "GENOLAKE_PSEUDONYMISE": "1", "GENOLAKE_PSEUDONYM_KEY_PARAMETER": secret}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GENOLAKE_PSEUDONYM_KEY", raising=False)
    resources = built_resources()
    assert resources["lake"].pseudonym_key_parameter == secret
    store = resources["lake"].store()
    store.upload(GVCFS[0], f"landing/{GVCFS[0].name}")

    result = tick(instance, resources)

    expected = pseudonymous_id(read_header(GVCFS[0]).samples[0], KEY)
    assert [r.partition_key for r in result.run_requests] == [expected]
    assert store.exists(f"ingest/landing_index/{expected}.json")


# --- the pipeline, end to end ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def pseudonymised_lake(tmp_path_factory):
    """The 100-sample cohort and 5 gVCFs landed and ingested with pseudonymisation on; tables, cohort and
    ClinVar built. Yields (instance, resources, names)."""
    from genolake_assets.assets.annotations import clinvar_source, clinvar_table, clinvar_variants

    home = tmp_path_factory.mktemp("pseudonymised") / "home"
    with pytest.MonkeyPatch.context() as patch, dg.DagsterInstance.ephemeral() as instance:
        patch.setenv("GENOLAKE_PROFILE", "local")
        patch.setenv("GENOLAKE_HOME", str(home))
        # A key file, not environment variables: the module's other tests must see the feature off.
        key_file = home.parent / "pseudonym.key"
        key_file.write_text(KEY_HEX)
        from genolake_assets.resources.profile import build_resources

        resources = build_resources(replace(Settings.from_env(), pseudonymise=True, pseudonym_key_file=str(key_file)))
        store = resources["lake"].store()
        for path in [COHORT_VCF, *GVCFS]:
            store.upload(path, f"landing/{path.name}")
        requests = tick(instance, resources).run_requests
        assert len(requests) == 105
        partitions = instance.get_dynamic_partitions("samples")
        tags = {RANGE_START: partitions[0], RANGE_END: partitions[-1]}
        assert dg.materialize(INGEST_ASSETS, instance=instance, resources=resources, tags=tags).success
        refresh_tables(instance, resources)
        assert dg.materialize([cohort_variants], instance=instance, resources=resources).success
        assert dg.materialize([clinvar_source, clinvar_variants, clinvar_table], instance=instance,
                              resources=resources,
                              run_config={"ops": {"clinvar_source": {"config": {"uri": str(VARIANT_SUMMARY)}}}}).success
        names = [name for path in [COHORT_VCF, *GVCFS] for name in read_header(path).samples]
        yield instance, resources, names


def test_partition_keys_are_the_pseudonyms_of_the_names(pseudonymised_lake):
    instance, _, names = pseudonymised_lake
    partitions = set(instance.get_dynamic_partitions("samples"))
    assert partitions == {pseudonymous_id(name, KEY) for name in names}
    assert all(PSEUDONYM.match(p) for p in partitions)


def test_no_object_key_outside_landing_names_a_sample(pseudonymised_lake):
    _, resources, names = pseudonymised_lake
    keys = [obj.key for obj in resources["lake"].store().list_objects("")]
    assert any(k.startswith("variants/sample_id=p") for k in keys) and any(k.startswith("raw/vcf/") for k in keys)
    tokens = name_tokens(names) | {path.name.split(".")[0] for path in GVCFS}
    leaks = [(key, token) for key in keys if not key.startswith("landing/") for token in tokens if token in key]
    assert not leaks
    raw_names = {k.rsplit("/", 1)[-1] for k in keys if k.startswith("raw/vcf/")}
    assert raw_names == {"source.vcf", "source.vcf.gz"}


def test_the_samples_table_alone_maps_pseudonyms_back_to_names(pseudonymised_lake):
    _, resources, names = pseudonymised_lake
    rows = resources["sql"].run("SELECT sample_id, sample_name, status FROM samples").table.to_pylist()
    assert sorted(r["sample_name"] for r in rows) == sorted(names)
    assert all(r["sample_id"] == pseudonymous_id(r["sample_name"], KEY) and r["status"] == "converted" for r in rows)
    # The per-sample tables carry the pseudonym in their sample_name column too: no second copy of the mapping.
    variants = resources["sql"].run("SELECT count(*) AS n, count_if(sample_name <> sample_id) AS named "
                                    "FROM variants").table.to_pylist()[0]
    assert variants["n"] > 0 and variants["named"] == 0
    blocks = resources["sql"].run("SELECT count_if(sample_name <> sample_id) AS named FROM reference_blocks")
    assert blocks.table.to_pylist()[0]["named"] == 0


def test_the_dagster_instance_holds_no_sample_name_in_tags_or_metadata(pseudonymised_lake):
    instance, _, names = pseudonymised_lake
    tokens = name_tokens(names)
    shown = []
    for run in instance.get_runs():
        shown.append(repr(run.tags))
        for record in instance.all_logs(run.run_id):
            event = record.dagster_event
            if event is not None and event.event_type_value in ("ASSET_MATERIALIZATION", "ASSET_OBSERVATION",
                                                                "ASSET_CHECK_EVALUATION"):
                shown.append(repr(event.event_specific_data))
    assert len(shown) > 100
    assert not [t for t in tokens if any(t in text for text in shown)]


def test_the_drug_response_report_filters_by_real_names_and_matches_the_oracle(pseudonymised_lake):
    from tests.pipeline.test_drug_response_report import assert_same_rows, run_report

    instance, resources, _ = pseudonymised_lake
    rows, metadata = run_report((instance, resources), sample_pattern="%::HG%", significance_pattern="%benign%",
                                assembly="GRCh37", limit=50)
    size, expected = expected_report([COHORT_VCF], VARIANT_SUMMARY, "%::HG%", "%benign%", "GRCh37", 50)
    assert expected and 0 < size < 100 and metadata["cohort_samples"] == size
    assert_same_rows(rows, expected)


def test_report_row_sources_shows_the_real_names_to_those_who_may_read_samples(pseudonymised_lake):
    _, resources, names = pseudonymised_lake
    row = resources["sql"].run(
        "SELECT contig, pos, ref, alt, count(*) AS n FROM cohort_variants WHERE kind = 'variant' AND contains(gt, 1) "
        "GROUP BY 1, 2, 3, 4 ORDER BY n DESC, pos LIMIT 1").table.to_pylist()[0]
    sources = resources["sql"].run(render("report_row_sources", chromosome=row["contig"].removeprefix("chr"),
                                          pos=row["pos"], ref=row["ref"], alt=row["alt"])).table.to_pylist()
    assert len(sources) == row["n"] > 1
    for source in sources:
        assert source["sample_name"] in names
        assert source["sample_id"] == pseudonymous_id(source["sample_name"], KEY)
        assert source["raw_uri"].rsplit("/", 1)[-1].startswith("source.vcf")


def test_the_same_name_gets_the_same_id_in_another_lake_and_another_key_gives_another(tmp_path, monkeypatch):
    def first_partition(home: Path, key_hex: str) -> str:
        monkeypatch.setenv("GENOLAKE_PROFILE", "local")
        monkeypatch.setenv("GENOLAKE_HOME", str(home))
        pseudonymise(monkeypatch, key_hex)
        resources = built_resources()
        resources["lake"].store().upload(GVCFS[0], "landing/renamed-upload.g.vcf.gz")
        with dg.DagsterInstance.ephemeral() as instance:
            return tick(instance, resources).run_requests[0].partition_key

    name = read_header(GVCFS[0]).samples[0]
    first = first_partition(tmp_path / "one", KEY_HEX)
    assert first == first_partition(tmp_path / "two", KEY_HEX) == pseudonymous_id(name, KEY)
    assert first_partition(tmp_path / "three", OTHER_KEY_HEX) != first


def test_a_second_file_with_a_taken_name_gets_a_file_specific_pseudonym(lake_home, monkeypatch, instance):
    pseudonymise(monkeypatch)
    resources = built_resources()
    store = resources["lake"].store()
    store.upload(GVCFS[0], "landing/run1/sample.g.vcf.gz")
    first = tick(instance, resources)
    store.upload(GVCFS[0], "landing/run2/sample.g.vcf.gz")
    second = tick(instance, resources, cursor=first.cursor)

    name = read_header(GVCFS[0]).samples[0]
    assert [r.partition_key for r in first.run_requests] == [pseudonymous_id(name, KEY)]
    assert [r.partition_key for r in second.run_requests] == [
        pseudonymous_id_from_file(name, "landing/run2/sample.g.vcf.gz", KEY)]
    assert all(not r.tags and "landing/" not in r.run_key for r in first.run_requests + second.run_requests)


def test_quarantined_files_are_filed_under_pseudonyms_not_their_names(lake_home, monkeypatch, instance, data_vcf,
                                                                     tmp_path):
    pseudonymise(monkeypatch)
    resources = built_resources()
    store = resources["lake"].store()
    store.upload(data_vcf / "bad" / "bad_flag_number.vcf", "landing/HG09999.broken.vcf")  # header unreadable
    truncated = tmp_path / "NA12249.truncated.g.vcf.gz"  # header readable, no BGZF end-of-file block
    truncated.write_bytes((data_vcf / "NA12249.hg38.g.vcf.gz").read_bytes()[:-28])
    store.upload(truncated, "landing/NA12249.truncated.g.vcf.gz")

    result = tick(instance, resources)
    sample_id = pseudonymous_id("NA12249", KEY)
    assert [r.partition_key for r in result.run_requests] == [sample_id]
    assert not dg.materialize(INGEST_ASSETS, partition_key=sample_id, instance=instance, resources=resources,
                              raise_on_error=False).success

    quarantined = sorted(o.key for o in store.list_objects("quarantine/"))
    token = SampleIdPolicy(key=KEY).file_token("landing/HG09999.broken.vcf")
    landing = [k for k in quarantined if k.startswith("quarantine/landing/")]
    assert landing and all(k.startswith(f"quarantine/landing/{token}-") for k in landing)
    assert {k.rsplit("/", 1)[-1] for k in landing} == {f"{token}.vcf", "reason.json"}
    assert sorted(k for k in quarantined if not k.startswith("quarantine/landing/")) == sorted([
        f"quarantine/{sample_id}/reason.json", f"quarantine/{sample_id}/{sample_id}.vcf.gz"])
    assert not [k for k in quarantined if "HG09999" in k or "NA12249" in k or "broken" in k]


def test_feature_off_keeps_the_ids_and_names_as_they_were(instance, resources, land, data_vcf, store):
    land(data_vcf / "HG00187.hg38.g.vcf.gz")
    requests = tick(instance, resources).run_requests
    assert [(r.partition_key, r.tags["genolake/sample_name"]) for r in requests] == [("HG00187", "HG00187")]
    assert requests[0].run_key.startswith("HG00187@landing/HG00187.hg38.g.vcf.gz@")
    assert dg.materialize(INGEST_ASSETS, partition_key="HG00187", instance=instance, resources=resources).success
    raw = [o.key for o in store.list_objects("raw/vcf/")]
    assert len(raw) == 1 and raw[0].endswith("/HG00187.hg38.g.vcf.gz")
    table = pq.read_table(store.local_path("variants/sample_id=HG00187/part-00000.parquet"),
                          columns=["sample_id", "sample_name"])
    assert set(table["sample_name"].to_pylist()) == {"HG00187"}


# --- alignments --------------------------------------------------------------------------------------


def test_landed_bams_get_pseudonymous_ids_and_their_copies_and_crams_lose_the_file_name(
        lake_home, monkeypatch, instance):
    pseudonymise(monkeypatch)
    resources = built_resources()
    store = resources["lake"].store()
    stem = "NA12878.chr22.tiny"
    store.upload(DATA_BAM / f"{stem}.bam", f"landing/{stem}.bam")
    for suffix in ("", ".fai", ".gzi"):
        store.upload(DATA_BAM / "ref" / f"q.fa.gz{suffix}", f"landing/references/q.fa.gz{suffix}")

    context = dg.build_sensor_context(instance=instance, resources={"lake": resources["lake"]})
    result = alignment_landing_sensor(context)
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    alignment_id = pseudonymous_id(stem, KEY)
    compress = [r for r in result.run_requests if r.job_name == "compress_alignments"]
    assert [r.partition_key for r in compress] == [alignment_id] and not compress[0].tags
    assert instance.get_dynamic_partitions("alignments") == [alignment_id]

    assert dg.materialize([reference_genomes], instance=instance, resources=resources).success
    run = dg.materialize([raw_bam, compressed_bam, alignment_file_catalog], partition_key=alignment_id,
                         instance=instance, resources=resources)
    assert run.success
    keys = [o.key for o in store.list_objects("") if not o.key.startswith("landing/")]
    assert f"raw/bam/{alignment_id}/" in " ".join(keys)
    assert any(k.startswith(f"alignments/cram/{alignment_id}/") and k.endswith(f"/{alignment_id}.cram") for k in keys)
    assert not [k for k in keys if "NA12878" in k]
    metadata = {k: v.value for e in run.get_asset_materialization_events() if e.asset_key.to_user_string() == "raw_bam"
                for k, v in e.materialization.metadata.items()}
    assert "source_uri" not in metadata and "NA12878" not in repr(metadata)


# --- what still leaked names (issue 21 item 8) ---------------------------------------------------------


def _all_run_text(instance) -> str:
    """Everything the Dagster instance keeps of its runs: tags, events (metadata, failures, errors), messages."""
    shown = []
    for run in instance.get_runs():
        shown.append(repr(run.tags))
        shown += [repr(record) for record in instance.all_logs(run.run_id)]
    return "\n".join(shown)


def test_lifecycle_plan_and_a_failed_bams_failure_name_no_landed_file(lake_home, monkeypatch, instance, tmp_path):
    from genolake_assets.assets.alignments import lake_lifecycle_policy

    pseudonymise(monkeypatch)
    resources = built_resources()
    store = resources["lake"].store()
    good, bad = "NA12878.chr22.tiny", "HG01234.truncated"
    store.upload(DATA_BAM / f"{good}.bam", f"landing/{good}.bam")
    truncated = tmp_path / f"{bad}.bam"
    truncated.write_bytes((DATA_BAM / f"{good}.bam").read_bytes()[:-28])  # no BGZF end-of-file block
    store.upload(truncated, f"landing/{bad}.bam")
    for suffix in ("", ".fai", ".gzi"):
        store.upload(DATA_BAM / "ref" / f"q.fa.gz{suffix}", f"landing/references/q.fa.gz{suffix}")
    result = alignment_landing_sensor(dg.build_sensor_context(instance=instance, resources={"lake": resources["lake"]}))
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    assert dg.materialize([reference_genomes], instance=instance, resources=resources).success
    good_id, bad_id = pseudonymous_id(good, KEY), pseudonymous_id(bad, KEY)
    assert dg.materialize([raw_bam, compressed_bam, alignment_file_catalog], partition_key=good_id,
                          instance=instance, resources=resources).success
    failed = dg.materialize([raw_bam], partition_key=bad_id, instance=instance, resources=resources,
                            raise_on_error=False)
    assert not failed.success
    failure = next(e for e in failed.all_events if e.is_step_failure).step_failure_data
    assert failure.user_failure_data.metadata["alignment_id"].value == bad_id
    assert "truncated" in failure.user_failure_data.description  # still says what is wrong
    assert "source_uri" not in failure.user_failure_data.metadata
    policy = dg.materialize([lake_lifecycle_policy], instance=instance, resources=resources)
    assert policy.success
    plan = next(e for e in policy.get_asset_materialization_events()).materialization.metadata["plan"].value
    # The landing copy of the compressed BAM is still in the plan (it expires), under its keyed file token.
    assert f"landing/{SampleIdPolicy(key=KEY).file_token(f'landing/{good}.bam')}" in plan

    shown = _all_run_text(instance)
    leaks = [token for token in ("NA12878", "HG01234", "truncated.bam", "chr22.tiny") if token in shown]
    assert not leaks, leaks
    assert good_id in shown and bad_id in shown


def test_the_samples_table_is_staged_privately_and_removed(lake_home, monkeypatch, instance, data_vcf):
    import stat

    from genolake_assets.assets.ingest import samples_table

    pseudonymise(monkeypatch)
    resources = built_resources()
    lake = resources["lake"]
    lake.store().upload(data_vcf / "HG00187.hg38.g.vcf.gz", "landing/HG00187.hg38.g.vcf.gz")
    sample_id = tick(instance, resources).run_requests[0].partition_key
    assert dg.materialize(INGEST_ASSETS, partition_key=sample_id, instance=instance, resources=resources).success
    staged_modes = []
    real_upload = type(lake.store()).upload

    def watching_upload(self, path, key):
        if key.startswith("samples/"):
            staged_modes.append((Path(path), stat.S_IMODE(Path(path).stat().st_mode)))
        return real_upload(self, path, key)

    monkeypatch.setattr(type(lake.store()), "upload", watching_upload)
    assert dg.materialize([samples_table], instance=instance, resources=resources).success

    assert [mode for _, mode in staged_modes] == [0o600]
    assert not staged_modes[0][0].exists()
    assert not (lake.scratch / "samples.parquet").exists()
    leftovers = [p for p in lake.scratch.rglob("*") if p.is_file()]
    assert not [p for p in leftovers if b"HG00187" in p.read_bytes()], leftovers


def test_the_samples_tables_quarantine_list_names_no_sample_or_file(lake_home, monkeypatch, instance, data_vcf):
    from genolake_assets.assets.ingest import samples_table

    pseudonymise(monkeypatch)
    resources = built_resources()
    store = resources["lake"].store()
    store.upload(data_vcf / "HG00187.hg38.g.vcf.gz", "landing/HG00187.hg38.g.vcf.gz")
    sample_id = tick(instance, resources).run_requests[0].partition_key
    # The landed file is replaced by another sample's before it is ingested: quarantined, with a reason
    # that names the sample and the file (kept in the lake's registry and the samples table).
    store.upload(data_vcf / "HG00190.hg38.g.vcf.gz", "landing/HG00187.hg38.g.vcf.gz")
    assert not dg.materialize(INGEST_ASSETS, partition_key=sample_id, instance=instance, resources=resources,
                              raise_on_error=False).success
    run = dg.materialize([samples_table], instance=instance, resources=resources)
    metadata = run.get_asset_materialization_events()[0].materialization.metadata
    shown = metadata["quarantined"].value
    assert sample_id in shown and "no longer in the header" in shown
    assert "HG00187" not in shown and "landing/" not in shown, shown


def test_vcf_error_messages_name_file_line_and_field_not_the_value():
    from genolake_assets.lib.errors import VcfFormatError
    from genolake_assets.lib.vcf.fields import ValueTypeError, cast_scalars
    import pyarrow as pa

    with pytest.raises(ValueTypeError) as bad:
        cast_scalars(pa.array(["1", "NA12878-secret", "3"]), "Integer")
    assert bad.value.row == 1 and bad.value.value == "NA12878-secret"  # kept for the caller that locates it
    assert "NA12878" not in str(bad.value) and "Integer" in str(bad.value)

    hostile = VcfFormatError("landing/x.vcf", "bad\n2026-01-01 INFO forged log line\x1b[2J\u202e", line=12,
                             field="INFO/DP")
    message = str(hostile)
    assert message.startswith("landing/x.vcf, line 12, field INFO/DP: ")
    assert "\n" not in message and "\x1b" not in message and "\u202e" not in message
    assert hostile.detail.problem.startswith("bad\n")  # the machine-readable detail is unchanged
