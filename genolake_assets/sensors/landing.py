"""The landing sensor: new VCFs under landing/ become sample partitions and ingest runs.

Restart-safe: the cursor records each handled file's etag and is only advanced in the same
SensorResult that adds the partitions and requests the runs; run keys carry the etag, so a
tick replayed after a crash never starts a second run for the same file version.

One bad file never stops the sensor: whatever fails on a file (a header that cannot be read or is too long,
a name the store refuses, a link leading out of the lake, anything raising) quarantines that file with the
reason, and the tick goes on with the other files and advances the cursor past it. Landed names may hold
spaces, parentheses and accents: the lake's own keys and ids derived from them are made safe.

Sample ids come from the lake's :class:`SampleIdPolicy`: the names themselves (when safe) or, with
``GENOLAKE_PSEUDONYMISE=1``, keyed hashes of them; then no partition key, object key, run tag or log
line written here carries a sample name (docs/phi.md).
"""


from collections import ChainMap
from collections.abc import MutableMapping

import dagster as dg

from genolake_assets.assets.shared import samples_partitions
from genolake_assets.lib.errors import VcfFormatError
from genolake_assets.lib.lake.identifiers import SampleIdPolicy, require_safe_key
from genolake_assets.lib.lake.layout import LANDING_PREFIX, landing_index_key
from genolake_assets.lib.lake.landing import LandingCursor, new_landed_files
from genolake_assets.lib.lake.quarantine import landed_file_problem, quarantine_landed, shown_uri
from genolake_assets.lib.lake.registry import LandingEntry
from genolake_assets.lib.vcf.header import parse_header
from genolake_assets.lib.vcf.source import text_lines_of_stream
from genolake_assets.resources.lake.lake import LakeResource
from genolake_assets.settings import default_sensor_status

INGEST_JOB_NAME = "ingest_samples"
FILES_PER_TICK = 50


def _header_of(store, obj):
    require_safe_key(obj.key)  # a name with control characters or undecodable bytes is refused, not read
    with store.open_read(obj.key) as handle:
        return parse_header(text_lines_of_stream(handle, store.uri(obj.key)), store.uri(obj.key))


def _sample_id(store, policy: SampleIdPolicy, name: str, source_key: str, claimed: MutableMapping[str, str]) -> str:
    """The sample's id; a name another landed file already holds gets a file-specific id instead."""
    sample_id = policy.sample_id(name)
    holder = claimed.get(sample_id)
    if holder is None and store.exists(landing_index_key(sample_id)):
        holder = LandingEntry.from_json(store.read_bytes(landing_index_key(sample_id))).source_key
    if holder is not None and holder != source_key:
        sample_id = policy.sample_id_from_file(name, source_key)
    claimed[sample_id] = source_key
    return sample_id


def _entries_for(store, policy: SampleIdPolicy, obj, claimed: MutableMapping[str, str]) -> list[LandingEntry]:
    header = _header_of(store, obj)
    if not header.samples:
        raise VcfFormatError(store.uri(obj.key), "sites-only VCF (no sample columns): nothing to register",
                             code="no_samples")
    return [LandingEntry(sample_id=_sample_id(store, policy, name, obj.key, claimed), sample_name=name,
                         source_key=obj.key, source_uri=store.uri(obj.key), source_etag=obj.etag,
                         source_size=obj.size, samples_in_file=len(header.samples)) for name in header.samples]


@dg.sensor(
    name="landing_sensor",
    job_name=INGEST_JOB_NAME,
    minimum_interval_seconds=30,
    default_status=default_sensor_status(),
    description="Registers each new or re-uploaded VCF under landing/ as one partition per sample and "
                "requests its ingest (raw_vcf → sample_variants/sample_reference_blocks). A file whose header "
                "cannot be read is quarantined with the reason.",
)
def landing_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
    store = lake.store()
    cursor = LandingCursor.parse(context.cursor)
    fresh, next_cursor = new_landed_files(store.list_objects(LANDING_PREFIX), cursor, FILES_PER_TICK)
    policy = lake.sample_id_policy() if fresh else None
    run_requests: list[dg.RunRequest] = []
    new_partitions: list[str] = []
    claimed: dict[str, str] = {}
    for obj in fresh:
        mine: dict[str, str] = {}  # the ids this file claims count only once it is accepted
        try:
            entries = _entries_for(store, policy, obj, ChainMap(mine, claimed))
        except Exception as exc:  # noqa: BLE001 - one file never stops the tick: it is quarantined with the reason
            _refuse(context, store, policy, obj, exc)
            continue
        claimed.update(mine)
        for entry in entries:
            if entry.sample_id != policy.sample_id(entry.sample_name):
                who = entry.sample_id if policy.pseudonymous else f"{entry.sample_name!r} of {entry.source_uri}"
                context.log.warning(f"sample {who} is already held by another file; registered as {entry.sample_id}")
            store.write_bytes(landing_index_key(entry.sample_id), entry.to_json())
            new_partitions.append(entry.sample_id)
            run_requests.append(dg.RunRequest(
                run_key=_run_key(policy, entry, obj),
                partition_key=entry.sample_id,
                tags={} if policy.pseudonymous else {"genolake/source_uri": entry.source_uri[:255],
                                                     "genolake/sample_name": entry.sample_name[:255]},
            ))
    if not fresh:
        return dg.SensorResult(skip_reason="no new VCFs under landing/", cursor=next_cursor.dump())
    existing = set(context.instance.get_dynamic_partitions(samples_partitions.name)) if context.instance else set()
    to_add = sorted({p for p in new_partitions if p not in existing})
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[samples_partitions.build_add_request(to_add)] if to_add else [],
        cursor=next_cursor.dump(),
    )


def _refuse(context, store, policy: SampleIdPolicy, obj, error: Exception) -> None:
    """Quarantine the landed file ``obj`` with why it was refused (a copy too, when it can be copied safely)."""
    problem = landed_file_problem(store, obj.key, error)
    token = policy.file_token(obj.key) if policy.pseudonymous else None
    reason = quarantine_landed(store, obj, problem, token=token)
    copied = "copy beside it" if reason["quarantined_copy"] else "not copied"
    if token is not None:  # the problem text may quote the header or the file name: the reason.json keeps it
        context.log.error(f"quarantined a landed file ({problem.code}); reason at {reason['reason_uri']}, {copied}")
        return
    context.log.error(f"quarantined {shown_uri(store, obj.key)}: {problem} (reason at {reason['reason_uri']}, "
                      f"{copied}{': ' + reason['copy_refused'] if reason.get('copy_refused') else ''})")


def _run_key(policy: SampleIdPolicy, entry: LandingEntry, obj) -> str:
    """Unique per sample and file version; when pseudonymising the landed path (often the sample's name)
    is replaced by its keyed token, since run keys are shown in the Dagster UI."""
    where = policy.file_token(obj.key) if policy.pseudonymous else obj.key
    return f"{entry.sample_id}@{where}@{obj.etag}"
