"""Alignments: landed BAMs → verified lossless CRAMs → the file catalog; references; lifecycle tiering.

The order is the safety argument: the CRAM is published only once decoding it reproduced every
record of the BAM (inside the compression job), the catalog records it only for a verified result,
and the original BAM is tagged for archive only after its catalog entries are written.

Also ``lake_lifecycle_policy``: the lake's storage tiering, applied as code (aws) or reported as a plan (local).
"""

import dataclasses
import json
import time

import dagster as dg
from pydantic import Field

from genolake_assets.assets.shared import URI, alignments_partitions, link
from genolake_assets.lib.alignments.registry import (
    AlignmentRecord,
    choose_reference,
    load_alignment,
    load_references,
    quarantine_alignment,
    register_alignment,
    register_landed_references,
    save_alignment,
)
from genolake_assets.lib.alignments.versions import unvouched_crams
from genolake_assets.lib.errors import AlignmentFileError
from genolake_assets.lib.lake.layout import LANDING_PREFIX, compression_result_key, cram_key, work_order_key
from genolake_assets.lib.lake.lifecycle import (
    LifecycleSettings,
    archive_tags,
    lifecycle_plan,
    lifecycle_rules,
    plan_summary,
    render_plan_markdown,
)
from genolake_assets.lib.lake.registry import utc_now
from genolake_assets.lib.reports.output import markdown_text
from genolake_assets.resources.compression.runner import CompressionRunner, RunnerOutcome
from genolake_assets.resources.file_catalog.file_catalog import FileCatalog, FileCatalogEntry
from genolake_assets.resources.lake.lake import LakeResource

_OWNERS = ["team:genomics-data-engineering"]
_WORK_ORDER_VERSION = 1
ROUND_TRIP_CHECK = "cram_round_trip_verified"


class CompressionConfig(dg.Config):
    cram_version: str = Field(default="3.1", description="CRAM 3.1 (smaller) or 3.0 (readable by older tools)")
    profile: str = Field(default="normal", description="htslib profile: fast, normal, small or archive "
                                                        "(archive: ~7% smaller for ~9x the encode time)")
    threads: int = Field(default=2, description="Threads for encoding and decoding")
    ignore_md5: bool = Field(default=False, description="Allow a reference whose @SQ M5 disagrees with the BAM "
                                                         "header (only for references rebuilt for testing; "
                                                         "verification still checks every base)")
    strict: bool = Field(default=False, description="Accept no difference at all, not even an unmapped read's "
                                                     "CIGAR or the CRAM's rewrite of @SQ UR/M5")


def _record(store, alignment_id: str) -> AlignmentRecord:
    record = load_alignment(store, alignment_id)
    if record is None:
        raise dg.Failure(description=f"no landed BAM is known as {alignment_id!r}: land it under landing/ and let "
                                     "alignment_landing_sensor register it")
    return record


def _landed_names(record: AlignmentRecord) -> list[str]:
    """How the landed file's name can appear in a message: its URI, key, file name and stem (longest first)."""
    file_name = record.source_key.rsplit("/", 1)[-1]
    stem = file_name.split(".", 1)[0]
    names = {record.source_uri, record.source_key, file_name, file_name.rsplit(".", 1)[0]}
    if len(stem) >= 4:  # a short stem would blank out ordinary words
        names.add(stem)
    return sorted((n for n in names if n), key=len, reverse=True)


def _shown(text: str | None, record: AlignmentRecord, pseudonymise: bool) -> str | None:
    """``text`` for the UI: when pseudonymising, the landed file's name (which often is the sample's) is
    replaced by "the landed file"; the registry and reason.json in the lake keep the full message."""
    if not pseudonymise or not text:
        return text
    for name in _landed_names(record):
        text = text.replace(name, "the landed file")
    return text


def _error_text(record: AlignmentRecord, error: AlignmentFileError, pseudonymise: bool) -> str:
    """The error as the UI shows it: file and problem, or (pseudonymising) the problem alone, scrubbed."""
    if not pseudonymise:
        return str(error)
    return _shown(f"the landed file: {error.detail.problem}", record, True)


def _refuse(store, record: AlignmentRecord, error: AlignmentFileError, extra: dict | None = None,
            pseudonymise: bool = False) -> dg.Failure:
    reason_uri = quarantine_alignment(store, record, error, extra)
    # Pseudonymised: no landed file name (source_uri) in the failure the UI keeps (docs/phi.md).
    source = {} if pseudonymise else {"source_uri": dg.MetadataValue.url(record.source_uri)}
    return dg.Failure(description=f"{record.alignment_id}: {_error_text(record, error, pseudonymise)}", metadata={
        "alignment_id": record.alignment_id, **source,
        "error_code": error.code, "reason": dg.MetadataValue.url(reason_uri)})


@dg.asset(group_name="alignments", kinds={"python", "s3"}, owners=_OWNERS,
          description="Reference FASTAs landed under landing/references/ (with .fai, and .gzi when bgzipped), "
                      "copied to references/<sha256>/ and described by each sequence's name, length and md5. "
                      "A CRAM is only decodable with its exact reference, so each CRAM's catalog entry names one.")
def reference_genomes(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    store = lake.store()
    registered, waiting = register_landed_references(store, lake.local_copy)
    for line in waiting:
        context.log.warning(line)
    references = load_references(store)
    table = "\n".join(f"| {markdown_text(r.file_name)} | {len(r.sequences)} | {r.size:,} | `{r.md5}` | "
                      f"{store.uri(r.key)} |" for r in references)
    return dg.MaterializeResult(metadata={
        "references": len(references), "newly_registered": len(registered), "waiting_for_index": len(waiting),
        "catalog": dg.MetadataValue.md("| file | sequences | bytes | md5 | uri |\n|---|---|---|---|---|\n" + table),
    })


@dg.asset(partitions_def=alignments_partitions, deps=["sequencer_runs"], group_name="alignments", kinds={"bam", "s3"},
          owners=_OWNERS,
          description="One landed alignment file per partition: checked complete (BGZF end-of-file block) and "
                      "readable (header), copied into raw/bam/<id>/<version>/ and described (samples, read groups, "
                      "@SQ lines). Only the header and the last 28 bytes are read, so a 100 GB BAM never leaves S3.")
def raw_bam(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    store = lake.store()
    started = time.perf_counter()
    record = _record(store, context.partition_key)
    try:
        record = register_alignment(store, record, pseudonymous=lake.pseudonymise)
    except AlignmentFileError as error:
        # Pseudonymised, the error (its message names the landed file) is not chained into the UI's traceback.
        raise _refuse(store, record, error, pseudonymise=lake.pseudonymise) from (
            None if lake.pseudonymise else error)
    save_alignment(store, record)
    if record.recognised_as:
        context.log.info(f"{record.alignment_id}: the landed file holds the same bytes as version "
                         f"{record.recognised_as}, already in the lake; not copied again")
    # A compression killed after publishing its CRAM but before its result left a CRAM nobody vouches for.
    orphans = unvouched_crams(store, record.alignment_id, keep_version=record.version)
    for key in orphans:
        store.delete(key)
        context.log.warning(f"removed {store.uri(key)}: published by a compression that was killed before it "
                            "wrote its result (never catalogued; its BAM's raw copy is kept)")
    # When pseudonymising, the UI gets neither the landed file's name nor the @RG SM names (registry only).
    named = ({"samples": len(record.samples)} if lake.pseudonymise else
             {"samples": ", ".join(record.samples) or "(no @RG SM)"})
    return dg.MaterializeResult(metadata={
        **({} if lake.pseudonymise else {"source_uri": dg.MetadataValue.url(record.source_uri)}),
        "raw_uri": dg.MetadataValue.url(record.raw_uri),
        URI: dg.MetadataValue.url(record.raw_uri), "seconds": round(time.perf_counter() - started, 3),
        "bytes": record.size, **named,
        "read_groups": record.read_groups, "sequences": len(record.sequence_header),
        "sort_order": record.sort_order, "version": record.version,
        "copied": record.recognised_as is None, "unvouched_crams_removed": len(orphans),
    })


def _cram_key_of(record: AlignmentRecord) -> str:
    return cram_key(record.alignment_id, record.version, record.raw_key.rsplit("/", 1)[-1])


def _work_order(store, record: AlignmentRecord, reference_key: str, config: CompressionConfig) -> dict:
    return {
        "work_order_version": _WORK_ORDER_VERSION,
        "input_uri": store.uri(record.raw_key), "reference_uri": store.uri(reference_key),
        "output_uri": store.uri(_cram_key_of(record)),
        "result_uri": store.uri(compression_result_key(record.alignment_id, record.version)),
        "options": {"cram_version": config.cram_version, "profile": config.profile, "threads": config.threads,
                    "ignore_md5": config.ignore_md5, "strict": config.strict},
    }


def _read_result(store, key: str) -> dict | None:
    return json.loads(store.read_bytes(key)) if store.exists(key) else None


def round_trip_check(store, alignment_id: str, refused: str | None = None,
                     pseudonymise: bool = False) -> dg.AssetCheckResult:
    """``cram_round_trip_verified`` from what the lake holds: the BAM version's latest compression result
    and its published CRAM. ``refused`` is why the asset refused the outcome (it then fails regardless).
    ``pseudonymise``: the reason never names the landed file."""
    record = _record(store, alignment_id)
    result_key = compression_result_key(record.alignment_id, record.version)
    result = _read_result(store, result_key) or {}
    cram = store.head(_cram_key_of(record))
    metadata = {"alignment_id": record.alignment_id, "bam_version": record.version,
                "result_uri": link(store.uri(result_key)),
                "records": (result.get("input") or {}).get("records") or 0,
                "accepted_differences": dg.MetadataValue.json(result.get("accepted_differences") or {})}
    verified = result.get("status") == "verified"
    published = verified and cram is not None and cram.size == result["output"]["size"]
    if published and not refused:
        return dg.AssetCheckResult(check_name=ROUND_TRIP_CHECK, passed=True, metadata={
            **metadata, "cram_records": result["output"]["records"], "ratio": result["ratio"],
            "content_checksum": result["content_checksum"], "cram_uri": link(store.uri(cram.key))})
    if refused:
        reason = refused
    elif not result:
        reason = f"no compression result at {store.uri(result_key)}" + (f": {record.reason}" if record.reason else "")
    elif not verified:
        reason = result.get("error") or f"the compression result says {result.get('status')!r}"
    else:
        reason = f"{store.uri(_cram_key_of(record))} is missing or not the verified size"
    reason = _shown(reason, record, pseudonymise)
    return dg.AssetCheckResult(check_name=ROUND_TRIP_CHECK, passed=False, description=reason, metadata={
        **metadata, "error_code": result.get("error_code") or "no_verified_result", "reason": reason,
        "differences": dg.MetadataValue.json(result.get("differences") or {})})


def _verified_earlier(store, result_key: str, order: dict, output_key: str) -> RunnerOutcome | None:
    """The earlier outcome if this BAM version was already verified with the same options and its CRAM is
    still there: compressing again would publish different bytes (CRAM containers are not byte-stable
    across runs) under a name the file catalog already holds."""
    result = _read_result(store, result_key)
    if not result or result.get("status") != "verified" or result.get("work_order", {}).get("options") != order["options"]:
        return None
    cram = store.head(output_key)
    if cram is None or cram.size != result["output"]["size"]:
        return None
    return RunnerOutcome(job_id="reused", exit_code=0, status="SUCCEEDED", result=result)


@dg.asset(partitions_def=alignments_partitions, deps=[raw_bam, reference_genomes], group_name="alignments",
          kinds={"cram", "batch", "s3"}, owners=_OWNERS,
          check_specs=[dg.AssetCheckSpec(ROUND_TRIP_CHECK, asset="compressed_bam", description=(
              "The CRAM decoded to every record of the BAM (differences only where accepted, listed) and the "
              "published CRAM is the verified one. Evaluated from the lake's compression result whenever "
              "the partition runs; a refused CRAM fails it with the reason."))],
          description="The BAM compressed to CRAM (3.1 by default) against its registered reference, by the "
                      "bam-compress program (a subprocess locally, an AWS Batch job on AWS). The program decodes the "
                      "CRAM and compares every record with the BAM before it publishes anything; a mismatch, a "
                      "truncated BAM or a wrong reference fails the partition and leaves the original untouched.")
def compressed_bam(context: dg.AssetExecutionContext, config: CompressionConfig, lake: LakeResource,
                   compression_runner: CompressionRunner):
    store = lake.store()
    record = _record(store, context.partition_key)
    if not record.raw_key or record.status == "quarantined" and not store.exists(record.raw_key):
        raise dg.Failure(description=f"{record.alignment_id} is not registered ({record.status}: "
                                     f"{_shown(record.reason, record, lake.pseudonymise)}); materialise raw_bam first")
    register_landed_references(store, lake.local_copy)  # a reference landed with the BAM may not be registered yet
    try:
        reference = choose_reference(record.source_uri, {"SQ": record.sequence_header}, load_references(store),
                                     check_md5=not config.ignore_md5)
    except AlignmentFileError as error:
        raise _refuse(store, record, error, pseudonymise=lake.pseudonymise) from (
            None if lake.pseudonymise else error)
    order = _work_order(store, record, reference.key, config)
    result_key = compression_result_key(record.alignment_id, record.version)
    output_key = _cram_key_of(record)
    outcome = _verified_earlier(store, result_key, order, output_key)
    if outcome is None:
        order_key = work_order_key(record.alignment_id, record.version)
        store.write_bytes(order_key, json.dumps(order, indent=2, sort_keys=True).encode())
        store.delete(result_key)  # a result left by an earlier attempt must never pass for this one's
        outcome = compression_runner.run(order, store.uri(order_key), lambda _uri: _read_result(store, result_key),
                                         context.log.info)
    else:
        context.log.info(f"{record.alignment_id}: this BAM version was already compressed and verified "
                         f"({store.uri(result_key)}); not compressing again")
    result = outcome.result or {}
    if outcome.status != "SUCCEEDED" or result.get("status") != "verified":
        error = AlignmentFileError(record.source_uri, result.get("error") or outcome.reason or "the compression job "
                                   f"{outcome.job_id} ended {outcome.status} without a result",
                                   code=result.get("error_code") or "compression_failed")
        failure = _refuse(store, record, error, {"job_id": outcome.job_id, "exit_code": outcome.exit_code,
                                                 "log_tail": outcome.log_tail[-20:]}, pseudonymise=lake.pseudonymise)
        yield round_trip_check(store, record.alignment_id, refused=_error_text(record, error, lake.pseudonymise),
                               pseudonymise=lake.pseudonymise)
        raise failure from None
    record.status, record.reason = "compressed", None
    record.sha256, record.md5 = result["input"]["sha256"], result["input"]["md5"]
    record.reference_key, record.result_key = reference.key, result_key
    record.cram_key = output_key
    save_alignment(store, record)
    yield dg.MaterializeResult(check_results=[round_trip_check(store, record.alignment_id,
                                                               pseudonymise=lake.pseudonymise)], metadata={
        "cram_uri": dg.MetadataValue.url(result["output"]["uri"]), URI: dg.MetadataValue.url(result["output"]["uri"]),
        "bam_uri": dg.MetadataValue.url(record.raw_uri), "reference_uri": dg.MetadataValue.url(store.uri(reference.key)),
        "records": result["input"]["records"], "bam_bytes": result["input"]["size"],
        "cram_bytes": result["output"]["size"], "ratio": result["ratio"],
        "bam_sha256": result["input"]["sha256"], "cram_sha256": result["output"]["sha256"],
        "content_checksum": result["content_checksum"], "reference_md5": result["reference"]["md5"],
        "accepted_differences": dg.MetadataValue.json(result["accepted_differences"]),
        "timings": dg.MetadataValue.json(result["timings"]), "tool_versions": dg.MetadataValue.json(result["tool_versions"]),
        "job_id": outcome.job_id, "result_uri": dg.MetadataValue.url(store.uri(result_key)),
    })


def _entry(store, key: str, file_type: str, digest: dict, status: str, **fields) -> FileCatalogEntry:
    bucket = getattr(store, "bucket", None)
    return FileCatalogEntry(file_uri=store.uri(key), file_name=key.rsplit("/", 1)[-1], file_type=file_type,
                            size=digest["size"], sha256=digest["sha256"], md5=digest["md5"], created=utc_now(),
                            bucket=bucket, key=key, status=status, **fields)


@dg.asset(partitions_def=alignments_partitions, deps=[compressed_bam], group_name="alignments",
          kinds={"dynamodb", "sqlite"}, owners=_OWNERS,
          description="The file catalog entries of one alignment: the CRAM (checksums, reference md5, the BAM it came "
                      "from, the record-level checksum both share), the original BAM and the reference. Written with "
                      "conditional puts, so a retry never duplicates or overwrites another file's entry. Only then is "
                      "the original BAM tagged genolake-archive=verified for the lifecycle rules.")
def alignment_file_catalog(context: dg.AssetExecutionContext, lake: LakeResource,
                           file_catalog: FileCatalog) -> dg.MaterializeResult:
    store = lake.store()
    record = _record(store, context.partition_key)
    result = _read_result(store, record.result_key) if record.result_key else None
    if record.status not in ("compressed", "archive-tagged") or not result or result.get("status") != "verified":
        raise dg.Failure(description=f"{record.alignment_id} has no verified CRAM ({record.status}: "
                                     f"{_shown(record.reason, record, lake.pseudonymise)}); "
                                     "materialise compressed_bam first")
    published = store.head(record.cram_key)
    if published is None or published.size != result["output"]["size"]:
        raise dg.Failure(description=f"{store.uri(record.cram_key)} is missing or not the verified size "
                                     f"{result['output']['size']}: not cataloguing it, not archiving the BAM")
    reference = result["reference"]
    cram = _entry(store, record.cram_key, "cram", result["output"], "verified",
                  reference_uri=store.uri(record.reference_key), reference_md5=reference["md5"],
                  source_uri=record.raw_uri, source_sha256=result["input"]["sha256"],
                  content_checksum=result["content_checksum"],
                  details={"ratio": result["ratio"], "records": result["output"]["records"],
                           "accepted_differences": result["accepted_differences"], "options": result["options"],
                           "tool_versions": result["tool_versions"], "index_uri": result["output"].get("index_uri")})
    bam = _entry(store, record.raw_key, "bam", result["input"], "archive-ready", source_uri=record.source_uri,
                 content_checksum=result["content_checksum"], reference_md5=reference["md5"],
                 details={"records": result["input"]["records"], "cram_uri": cram.file_uri,
                          "original_header_reference_fields": result["input"].get("original_header_reference_fields")})
    fasta = _entry(store, record.reference_key, "fasta", reference, "reference",
                   details={"sequences": len(reference.get("sequences", {}))})
    written = {entry.file_type: file_catalog.put(entry) for entry in (cram, bam, fasta)}
    store.put_tags(record.raw_key, archive_tags(record.cram_key))
    file_catalog.set_status(bam.file_uri, "archive-tagged", bam.sha256)
    record.status = "archive-tagged"
    save_alignment(store, record)
    return dg.MaterializeResult(metadata={
        "catalog": file_catalog.describe(), "cram_uri": dg.MetadataValue.url(cram.file_uri),
        "bam_uri": dg.MetadataValue.url(bam.file_uri), "reference_uri": dg.MetadataValue.url(fasta.file_uri),
        "entries_written": dg.MetadataValue.json(written), "bam_tags": dg.MetadataValue.json(archive_tags(record.cram_key)),
        "cram_sha256": cram.sha256, "bam_sha256": bam.sha256, "reference_md5": fasta.md5,
    })


@dg.asset(group_name="alignments", kinds={"s3"}, owners=["team:genomics-data-engineering"],
          description="S3 lifecycle rules as code: original BAMs tagged genolake-archive=verified (only after their "
                      "CRAM verified and was catalogued) move to Glacier Deep Archive, raw VCFs to Standard-IA; CRAMs "
                      "and references stay hot; unfinished multipart uploads are aborted. The aws profile writes the "
                      "rules to the lake bucket (keeping rules it does not own); the local profile reports what the "
                      "rules would do to each object in the lake.")
def lake_lifecycle_policy(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    settings = LifecycleSettings.from_env()
    rules = lifecycle_rules(settings)
    metadata = {"rules": dg.MetadataValue.json(rules), "profile": lake.profile}
    if lake.profile == "aws":
        applied = lake.lifecycle_applier().apply(rules)
        context.log.info(f"lifecycle rules on s3://{lake.s3_bucket}: wrote {applied['applied']}, kept {applied['kept']}")
        metadata.update({"bucket": lake.s3_bucket, "changed": applied["changed"],
                         "kept_foreign_rules": dg.MetadataValue.json(applied["kept"]),
                         "bucket_rules": dg.MetadataValue.json(applied["rules"])})
        return dg.MaterializeResult(metadata=metadata)
    store = lake.store()
    rows = lifecycle_plan(store.list_objects(""), store.get_tags, settings)
    if lake.pseudonymise:  # landing keys are the uploaders' file names: shown as their keyed file tokens
        policy = lake.sample_id_policy()
        rows = [dataclasses.replace(r, key=f"{LANDING_PREFIX}{policy.file_token(r.key)}")
                if r.key.startswith(LANDING_PREFIX) else r for r in rows]
    metadata.update({"plan": dg.MetadataValue.md(render_plan_markdown(rows, limit=100)),
                     "summary": dg.MetadataValue.json(plan_summary(rows)), "objects": len(rows)})
    return dg.MaterializeResult(metadata=metadata)


lifecycle_job = dg.define_asset_job(
    name="apply_lifecycle_policy", selection=dg.AssetSelection.assets(lake_lifecycle_policy),
    description="Apply the lake's S3 lifecycle rules (aws) or report what they would do (local).",
)
