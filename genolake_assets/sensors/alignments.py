"""The alignment landing sensor: new BAMs under landing/ become alignment partitions and compression
runs; new reference FASTAs under landing/references/ get registered.

Restart-safe like the VCF landing sensor: the cursor holds each handled file's etag and advances in
the same SensorResult that adds the partitions and requests the runs; run keys carry the etag.
Alignment ids come from the BAM's file stem through the lake's :class:`SampleIdPolicy` (a keyed hash
of it when pseudonymising, docs/phi.md); a stem with spaces, parentheses or accents gets a safe id.
A BAM that fails here (a name the store refuses, a link leading out of the lake, anything raising) is
refused with a reason under ``quarantine/landing/`` (not copied: a BAM is not duplicated to say it is bad)
and the tick goes on with the other files.
"""

import dagster as dg

from genolake_assets.assets.shared import alignments_partitions
from genolake_assets.lib.alignments.registry import AlignmentRecord, load_alignment, save_alignment
from genolake_assets.lib.lake.identifiers import SampleIdPolicy, require_safe_key
from genolake_assets.lib.lake.layout import LANDING_PREFIX, is_alignment_key, is_reference_key
from genolake_assets.lib.lake.landing import LandingCursor, new_landed_files
from genolake_assets.lib.lake.quarantine import landed_file_problem, quarantine_landed, shown_uri
from genolake_assets.resources.lake.lake import LakeResource
from genolake_assets.settings import default_sensor_status

FILES_PER_TICK = 50

compress_alignments = dg.define_asset_job(
    name="compress_alignments",
    selection=dg.AssetSelection.assets("raw_bam", "compressed_bam", "alignment_file_catalog"),
    partitions_def=alignments_partitions,
    description="Register, compress (verified lossless CRAM) and catalogue landed BAMs; tag originals for archive.",
)
register_references = dg.define_asset_job(
    name="register_references", selection=dg.AssetSelection.assets("reference_genomes"),
    description="Register reference FASTAs landed under landing/references/.",
)


def _alignment_id(store, policy: SampleIdPolicy, key: str) -> str:
    """The file's stem as an id; a stem another landed BAM already holds gets a file-specific id."""
    stem = key.rsplit("/", 1)[-1][:-len(".bam")].strip()
    alignment_id = policy.sample_id(stem)
    held = load_alignment(store, alignment_id)
    if held is not None and held.source_key != key:
        alignment_id = policy.sample_id_from_file(stem, key)
    return alignment_id


def _require_readable(store, key: str) -> None:
    """Raise unless ``key`` is a regular file the store can read (a link leading out of the lake raises)."""
    require_safe_key(key)
    if store.head(key) is None:
        raise FileNotFoundError(f"{store.uri(key)} is not a regular file (gone since it was listed?)")


def _refuse(context, store, policy: SampleIdPolicy, obj, error: Exception) -> None:
    problem = landed_file_problem(store, obj.key, error)
    token = policy.file_token(obj.key) if policy.pseudonymous else None
    reason = quarantine_landed(store, obj, problem, token=token, copy=False)
    if token is not None:  # the landed path is usually the sample's name: the reason.json keeps it
        context.log.error(f"refused a landed BAM ({problem.code}); reason at {reason['reason_uri']}")
        return
    context.log.error(f"refused {shown_uri(store, obj.key)}: {problem} (reason at {reason['reason_uri']})")


def _is_watched(key: str) -> bool:
    return is_alignment_key(key) or is_reference_key(key)


@dg.sensor(
    name="alignment_landing_sensor",
    jobs=[compress_alignments, register_references],
    minimum_interval_seconds=30,
    default_status=default_sensor_status(),
    description="Registers each new or re-uploaded BAM under landing/ as an alignment partition and requests its "
                "compression (raw_bam → compressed_bam → alignment_file_catalog); new reference FASTAs under "
                "landing/references/ request reference_genomes.",
)
def alignment_landing_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
    store = lake.store()
    cursor = LandingCursor.parse(context.cursor)
    fresh, next_cursor = new_landed_files(store.list_objects(LANDING_PREFIX), cursor, FILES_PER_TICK, _is_watched)
    if not fresh:
        return dg.SensorResult(skip_reason="no new BAMs or references under landing/", cursor=next_cursor.dump())
    run_requests, new_partitions = [], []
    references = [obj for obj in fresh if is_reference_key(obj.key)]
    if references:
        run_requests.append(dg.RunRequest(job_name=register_references.name,
                                          run_key="references@" + ",".join(f"{o.key}@{o.etag}" for o in references)[:500]))
    policy = lake.sample_id_policy() if any(is_alignment_key(obj.key) for obj in fresh) else None
    for obj in fresh:
        if not is_alignment_key(obj.key):
            continue
        try:
            _require_readable(store, obj.key)
            alignment_id = _alignment_id(store, policy, obj.key)
            previous = load_alignment(store, alignment_id)
            record = AlignmentRecord(alignment_id=alignment_id, source_key=obj.key, source_uri=store.uri(obj.key),
                                     source_etag=obj.etag)
        except Exception as error:  # noqa: BLE001 - one file never stops the tick: its refusal is recorded
            _refuse(context, store, policy, obj, error)
            continue
        if previous is not None and previous.source_etag == obj.etag:
            record = previous
        save_alignment(store, record)
        new_partitions.append(alignment_id)
        if policy.pseudonymous:  # the landed path is usually the sample's name: keep it out of the UI
            run_requests.append(dg.RunRequest(job_name=compress_alignments.name, partition_key=alignment_id,
                                              run_key=f"{alignment_id}@{policy.file_token(obj.key)}@{obj.etag}"))
            continue
        run_requests.append(dg.RunRequest(job_name=compress_alignments.name, partition_key=alignment_id,
                                          run_key=f"{alignment_id}@{obj.key}@{obj.etag}",
                                          tags={"genolake/source_uri": store.uri(obj.key)[:255]}))
    existing = set(context.instance.get_dynamic_partitions(alignments_partitions.name)) if context.instance else set()
    to_add = sorted({p for p in new_partitions if p not in existing})
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[alignments_partitions.build_add_request(to_add)] if to_add else [],
        cursor=next_cursor.dump(),
    )
