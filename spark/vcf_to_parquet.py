"""VCF → the lake's variant and reference-block tables with Hail on Spark (the scale-out engine).

    spark-submit vcf_to_parquet.py --manifest s3://bucket/…/manifest.json        # on EMR
    python spark/vcf_to_parquet.py --manifest manifest.json --master 'local[2]'  # local Spark

The manifest (genolake_assets/lib/vcf/batch.py) lists VCFs with the samples to convert; the
job stages each sample's files under the job's staging folder and writes one result per VCF. A VCF
that cannot be converted is reported with the problem and the next one goes on. Nothing is published
here: the orchestrator publishes staged files once it has checked them, as for the in-process engine.

Hail does the VCF semantics (parsing, `split_multi_hts`, `min_rep`, downcoding); the rows are then
written by genolake's own Parquet writer so both engines produce the layout and schema of
docs/variant-table.md. Where Hail cannot represent something the table holds, the job reads it
itself and says so below.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
import uuid
from dataclasses import dataclass

import hail as hl

from genolake_assets.lib.vcf.batch import BatchResult, ConversionJob, ConversionManifest, JobOutcome
from genolake_assets.lib.errors import InputProblem, VcfFormatError
from genolake_assets.lib.lake.job_io import job_pipes, read_text, write_text
from genolake_assets.lib.lake.staged_tables import filesystem_for, finish_sample_table, staged_uri
from genolake_assets.lib.vcf.schema import REFERENCE_BLOCKS, SPLIT_REWRITTEN_FORMAT, TABLES, VARIANTS, schemas
from genolake_assets.lib.vcf.conventions import SPANNING_DELETION, SYMBOLIC_REFERENCE
from genolake_assets.lib.vcf.convert import ConversionReport, SampleReport
from genolake_assets.lib.vcf.header import VcfHeader, read_header_stream

ENGINE = "genolake-hail"
ENGINE_VERSION = "1"
UNKNOWN_CONTIG_LENGTH = 2**31 - 2


def read_vcf_header(uri: str) -> VcfHeader:
    """The header, streamed (a whole-genome gVCF is never downloaded for it)."""
    fs, path = filesystem_for(uri)
    with fs.open_input_stream(path) as stream:
        return read_header_stream(stream, uri)


def reference_genome(header: VcfHeader, vcf_uri: str, gz: bool) -> hl.ReferenceGenome:
    """A reference genome made of the header's contigs, so any assembly (and the header's contig order,
    which is the table's sort order) works; contigs the header does not declare are found in the data."""
    contigs = list(header.contigs)
    if not contigs:
        probe = hl.import_vcf(vcf_uri, reference_genome=None, force_bgz=gz, array_elements_required=False)
        contigs = sorted(probe.aggregate_rows(hl.agg.collect_as_set(probe.locus.contig)))
    lengths = {c: header.contig_lengths.get(c, UNKNOWN_CONTIG_LENGTH) for c in contigs}
    key = tuple(lengths.items())
    if key not in _REFERENCE_GENOMES:  # a batch of gVCFs from one pipeline shares one
        _REFERENCE_GENOMES[key] = hl.ReferenceGenome(f"genolake_{uuid.uuid4().hex[:12]}", contigs, lengths)
    return _REFERENCE_GENOMES[key]


_REFERENCE_GENOMES: dict[tuple, hl.ReferenceGenome] = {}


def _genotype(call):
    return hl.or_missing(hl.is_defined(call), hl.range(call.ploidy).map(lambda i: call[i]))


def _format_value(entry, key: str, header: VcfHeader):
    value = entry[key]
    if key == "PGT" and value.dtype == hl.tcall:
        return hl.str(value)  # Hail parses PGT as a call; the table keeps the VCF text
    return value


UNDECLARED_LITERAL_LIMIT = 50_000


def _undeclared_info(mt, vcf_uri: str, header: VcfHeader, rg, gz: bool):
    """Per record: INFO entries the header does not declare, verbatim (None when there are none).

    Hail drops them on import; the table keeps them, so they are read from the text in one filtered
    pass. Files have none or a few: those few are looked up from a literal; many are joined."""
    declared = hl.literal(set(header.info))
    lines = hl.import_lines(vcf_uri, force_bgz=gz)
    lines = lines.filter(~lines.text.startswith("#"))
    fields = lines.text.split("\t")
    entries = fields[7].split(";").filter(lambda e: (e != ".") & ~declared.contains(e.split("=")[0]))
    lines = lines.select(contig=fields[0], pos=hl.int32(fields[1]), ref=fields[3], alt=fields[4],
                         undeclared=hl.or_missing(hl.len(entries) > 0, hl.delimit(entries, ";")))
    lines = lines.filter(hl.is_defined(lines.undeclared))
    found = lines.take(UNDECLARED_LITERAL_LIMIT + 1)
    if not found:
        return hl.missing(hl.tstr)
    alt_text = hl.delimit(mt.alleles[1:], ",")
    alt_text = hl.if_else(alt_text == "", ".", alt_text)
    if len(found) <= UNDECLARED_LITERAL_LIMIT:
        lookup = hl.literal({(r.contig, r.pos, r.ref, r.alt): r.undeclared for r in found})
        return lookup.get(hl.tuple([mt.locus.contig, mt.locus.position, mt.alleles[0], alt_text]))
    keyed = lines.key_by(locus=hl.locus(lines.contig, lines.pos, reference_genome=rg),
                         alleles=hl.array([lines.ref]).extend(lines.alt.split(",").filter(lambda a: a != ".")))
    return keyed.distinct()[mt.locus, mt.alleles].undeclared


def _row_values(mt, header: VcfHeader, variant: bool) -> dict:
    ref = mt.alleles[0]
    end_of_ref = mt.locus.position + hl.len(ref) - 1
    values = {
        "contig": mt.locus.contig, "pos": mt.locus.position, "ref": ref, "rsid": mt.rsid, "qual": mt.qual,
        # Hail holds FILTER as a set: PASS is the empty set, the file's order is not kept (the table sorts).
        "filters": hl.or_missing(hl.is_defined(mt.filters),
                                 hl.if_else(hl.len(mt.filters) == 0, ["PASS"], hl.sorted(hl.array(mt.filters)))),
        "alleles_": mt._alleles, "undeclared_info": mt._undeclared,
    }
    if variant:
        alt = mt.alleles[1]
        values.update(alt=alt, end=end_of_ref, allele_index=mt.a_index, was_split=mt.was_split,
                      variant_id=hl.delimit([mt.locus.contig, hl.str(mt.locus.position), ref, alt], ":"))
    else:
        info_end = mt.info.END if "END" in header.info else hl.missing(hl.tint32)
        values.update(alt=hl.missing(hl.tstr), end=hl.or_else(info_end, end_of_ref), allele_index=0)
    values.update({f.column: mt.info[key] for key, f in header.info.items()})
    return values


def _entry_values(mt, header: VcfHeader, variant: bool) -> dict:
    values = {}
    if "GT" in header.format:
        values.update(gt=_genotype(mt.GT), gt_phased=mt.GT.phased)
    else:
        values.update(gt=hl.missing(hl.tarray(hl.tint32)), gt_phased=hl.missing(hl.tbool))
    values.update({f.column: _format_value(mt, key, header) for key, f in header.format.items() if key != "GT"})
    if variant:
        if "GT" in header.format:
            values["gt_unsplit"] = hl.or_missing(mt.was_split, _genotype(mt._GT_unsplit))
        for key in SPLIT_REWRITTEN_FORMAT:
            if key in header.format:
                original = mt[f"_{key}_unsplit"]
                original = hl.str(original) if original.dtype == hl.tcall else original
                values[header.format[key].column + "_unsplit"] = hl.or_missing(mt.was_split, original)
    return values


def _entries(mt, header: VcfHeader, variant: bool, contig_rank: dict, sample_ids: dict[str, str]):
    """One row per kept entry, with the table's columns (sample columns are added when finishing)."""
    mt = mt.select_rows(**_row_values(mt, header, variant))
    mt = mt.select_entries(**_entry_values(mt, header, variant))
    table = mt.entries().key_by()
    rank = hl.literal(contig_rank, hl.tdict(hl.tstr, hl.tint32))
    table = table.annotate(sample_id=hl.literal(sample_ids, hl.tdict(hl.tstr, hl.tstr))[table.s],
                           _rank=hl.or_else(rank.get(table.contig), len(contig_rank)))
    return table.drop("locus", "alleles", "s").rename({"alleles_": "alleles"})


def classify(mt, header: VcfHeader, multi_sample: bool):
    """Per record and sample: a reference-block row, variant rows, or neither (docs/variant-table.md)."""
    alts = mt.alleles[1:]
    real = alts.filter(lambda a: ~hl.literal([*SYMBOLIC_REFERENCE, SPANNING_DELETION]).contains(a))
    mt = mt.annotate_rows(_alleles=mt.alleles, _real=hl.len(real) > 0, _star=alts.contains(SPANNING_DELETION))
    homref = (hl.is_defined(mt.GT) & mt.GT.is_hom_ref()) if (multi_sample and "GT" in header.format) \
        else hl.bool(False)
    return mt.annotate_entries(
        _block=(~mt._real & ~mt._star) | (mt._real & homref),
        _variant=mt._real & ~homref,
        _spanning=~mt._real & mt._star)


@dataclass
class PreparedJob:
    """A VCF whose header has been read and checked, with its samples' rows as Hail tables."""

    job: ConversionJob
    header: VcfHeader
    blocks: object = None
    variants: object = None
    counts: object = None


def prepare(job: ConversionJob) -> PreparedJob:
    header = read_vcf_header(job.vcf_uri)
    unknown = [name for name in job.samples if name not in header.samples]
    if unknown:
        raise VcfFormatError(job.vcf_uri, f"samples {unknown} are not in the header", code="unknown_sample")
    return PreparedJob(job, header)


def build_tables(prepared: PreparedJob, regions_bed_uri: str | None) -> PreparedJob:
    """The job's reference-block and variant rows and per-sample counts, as (lazy) Hail tables."""
    job, header = prepared.job, prepared.header
    gz = job.vcf_uri.endswith((".gz", ".bgz"))
    rg = reference_genome(header, job.vcf_uri, gz)
    mt = hl.import_vcf(job.vcf_uri, reference_genome=rg, force_bgz=gz, array_elements_required=False,
                       call_fields=["PGT"] if "PGT" in header.format else [])
    mt = mt.filter_cols(hl.literal(set(job.samples)).contains(mt.s))
    if regions_bed_uri:
        regions = hl.import_bed(regions_bed_uri, reference_genome=rg, skip_invalid_intervals=True)
        mt = mt.filter_rows(hl.is_defined(regions[mt.locus]))
    mt = mt.annotate_rows(_undeclared=_undeclared_info(mt, job.vcf_uri, header, rg, gz))
    mt = classify(mt, header, len(header.samples) > 1)
    counts = mt.annotate_cols(_n=hl.struct(
        records=hl.agg.count(), variant=hl.agg.count_where(mt._variant), block=hl.agg.count_where(mt._block),
        spanning=hl.agg.count_where(mt._spanning))).cols().key_by()
    prepared.counts = counts.select(job_id=hl.str(job.job_id), s=counts.s, n=counts._n)

    contig_rank = {c: i for i, c in enumerate(header.contigs)}
    prepared.blocks = _entries(mt.filter_entries(mt._block), header, False, contig_rank, job.samples)
    variants = mt.filter_rows(mt._real)
    variants = variants.filter_entries(variants._variant)
    saved = {f"_{k}_unsplit": variants[k] for k in ("GT", *SPLIT_REWRITTEN_FORMAT) if k in header.format}
    variants = variants.annotate_entries(**saved)
    biallelic = variants.filter_rows(hl.len(variants.alleles) == 2).annotate_rows(a_index=1, was_split=False)
    split = hl.split_multi_hts(variants.filter_rows(hl.len(variants.alleles) > 2), permit_shuffle=True)
    split = split.filter_rows(~hl.literal(list(SYMBOLIC_REFERENCE)).contains(split.alleles[1]))
    split = split.select_rows(*biallelic.row_value).select_entries(*biallelic.entry)
    prepared.variants = _entries(split.union_rows(biallelic), header, True, contig_rank, job.samples)
    return prepared


def convert(prepared: PreparedJob, regions_bed_uri: str | None, spark_tmp: str) -> JobOutcome:
    """One VCF: four Spark jobs (counts, the two tables' rows, the staged files).

    Hail's partitions are in locus order, the reference genome's contigs are the header's, and Spark
    names each task's file by its partition index, so reading a sample's reference blocks in file-name
    order yields them sorted as the table requires; variant rows are sorted by Spark (the writer checks
    both)."""
    started = time.perf_counter()
    steps = {}
    prepared = build_tables(prepared, regions_bed_uri)
    steps["plan"] = time.perf_counter()
    counts = prepared.counts.collect()
    steps["count"] = time.perf_counter()
    intermediate = f"{spark_tmp.rstrip('/')}/{uuid.uuid4().hex}"
    for table, rows in ((REFERENCE_BLOCKS, prepared.blocks), (VARIANTS, prepared.variants)):
        frame = rows.to_spark(flatten=False)
        if table == VARIANTS:  # split rows come after the biallelic ones (union_rows does not merge): sort
            frame = frame.repartition("sample_id").sortWithinPartitions("_rank", "pos")
        frame.write.mode("overwrite").partitionBy("sample_id").parquet(f"{intermediate}/{table}")
        steps[table] = time.perf_counter()
    staged = _finish_files([prepared], intermediate)
    steps["finish"] = time.perf_counter()
    per_sample = {(row.job_id, row.s): row.n for row in counts}
    previous, timings = started, []
    for step, at in steps.items():
        timings.append(f"{step} {at - previous:.1f} s")
        previous = at
    print(f"{prepared.job.vcf_uri}: " + ", ".join(timings), flush=True)
    return _outcome(prepared, per_sample, staged, time.perf_counter() - started)


def _finish_files(group: list[PreparedJob], intermediate: str) -> dict:
    """Write each sample's staged files, one Spark task per sample and table."""
    tasks = []
    for p in group:
        table_schemas = schemas(p.header)
        contig_rank = {c: i for i, c in enumerate(p.header.contigs)}
        names = p.job.name_columns or {}
        for name, sample_id in p.job.samples.items():
            for table in TABLES:
                tasks.append((p.job.job_id, table, name, f"{intermediate}/{table}/sample_id={sample_id}",
                              staged_uri(p.job.staging_uri, table, sample_id), table_schemas[table], contig_rank,
                              {"sample_id": sample_id, "sample_name": names.get(name, name)}))

    def finish(task):
        job_id, table, name, source, target, schema, contig_rank, constants = task
        return (job_id, table, name), finish_sample_table(source, target, schema, contig_rank, constants)

    context = hl.spark_context()
    # A few tasks per core: one Spark task per file cost a Python worker round trip each (200 for the cohort).
    slices = max(1, min(len(tasks), 2 * context.defaultParallelism))
    return dict(context.parallelize(tasks, slices).map(finish).collect())


def _outcome(prepared: PreparedJob, per_sample: dict, staged: dict, seconds: float) -> JobOutcome:
    job, header = prepared.job, prepared.header
    samples, staged_info = {}, {}
    records_read = 0
    for name, sample_id in job.samples.items():
        variants, blocks = staged[(job.job_id, VARIANTS, name)], staged[(job.job_id, REFERENCE_BLOCKS, name)]
        n = per_sample[(job.job_id, name)]
        records_read = n.records
        if n.variant + n.block + n.spanning != n.records or blocks.rows != n.block:
            raise VcfFormatError(job.vcf_uri, f"sample {name}: {n.variant + n.block + n.spanning} records "
                                 f"accounted for, {n.records} read, {blocks.rows} block rows written for {n.block}",
                                 code="verification_failed")
        samples[name] = SampleReport(
            name, sample_id, variants.rows, blocks.rows, n.variant, n.block, n.spanning,
            files={VARIANTS: variants.uri, REFERENCE_BLOCKS: blocks.uri},
            bytes={VARIANTS: variants.bytes, REFERENCE_BLOCKS: blocks.bytes},
            resorted=not (variants.sorted and blocks.sorted))
        staged_info[sample_id] = {t: {"sha256": s.sha256, "bytes": s.bytes, "rows": s.rows}
                                  for t, s in ((VARIANTS, variants), (REFERENCE_BLOCKS, blocks))}
    report = ConversionReport(job.vcf_uri, records_read, header.reference_genome, header.caller,
                              header.file_format, samples, seconds, engine=ENGINE, engine_version=ENGINE_VERSION)
    return JobOutcome(job.job_id, job.vcf_uri, report=report, seconds=seconds, staged=staged_info)


def _problem(job: ConversionJob, exc: BaseException) -> InputProblem:
    if isinstance(exc, VcfFormatError):
        return exc.detail
    # Hail's errors carry the JVM's stack; the first line names what is wrong with the file.
    message = str(exc).strip().splitlines() or [type(exc).__name__]
    summary = next((line for line in message if "Error" in line or "error" in line), message[0])
    return InputProblem(file=job.vcf_uri, problem=f"Hail could not convert the file: {summary[:2000]}",
                        code="hail_error")


def run(manifest: ConversionManifest, pipes=None, spark_tmp: str | None = None) -> BatchResult:
    started = time.perf_counter()
    tmp = spark_tmp or f"{manifest.result_uri.rsplit('/', 1)[0]}/_spark"
    outcomes = []
    for job in manifest.jobs:
        try:
            outcome = convert(prepare(job), manifest.regions_bed_uri, tmp)
        except Exception as exc:  # one bad VCF is reported and the batch goes on
            traceback.print_exc()
            outcome = JobOutcome(job.job_id, job.vcf_uri, problem=_problem(job, exc))
        outcomes.append(outcome)
        _report(pipes, outcome)
    context = hl.spark_context()
    return BatchResult(ENGINE, ENGINE_VERSION, outcomes, time.perf_counter() - started,
                       spark={"master": context.master, "application_id": context.applicationId,
                              "hail_version": hl.version(), "spark_version": context.version})


def _report(pipes, outcome: JobOutcome) -> None:
    if outcome.ok:
        for sample in outcome.report.samples.values():
            message = {"kind": "sample", "job_id": outcome.job_id, "sample_id": sample.sample_id,
                       "rows": sample.variant_rows, "reference_block_rows": sample.reference_block_rows,
                       "bytes": sum(sample.bytes.values()), "seconds": round(outcome.seconds, 3)}
            print(json.dumps(message), flush=True)
            if pipes is not None:
                pipes.report_custom_message(message)
    else:
        message = {"kind": "failed", "job_id": outcome.job_id, "vcf_uri": outcome.vcf_uri,
                   "problem": str(outcome.problem)}
        print(json.dumps(message), flush=True)
        if pipes is not None:
            pipes.report_custom_message(message)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", required=True, help="the conversion manifest (path or s3:// URI)")
    parser.add_argument("--master", default=None, help="Spark master for a local run, e.g. 'local[2]'")
    parser.add_argument("--driver-memory", default="2g")
    parser.add_argument("--tmp-dir", default=None, help="Hail/Spark scratch (default: a temp dir)")
    args = parser.parse_args(argv)
    manifest = ConversionManifest.from_json(read_text(args.manifest))
    tmp = args.tmp_dir or tempfile.mkdtemp(prefix="genolake-hail-")
    # Spark's Python workers (which write the Parquet files) must run this interpreter, with genolake on it.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    init = {"quiet": True, "log": os.path.join(tmp, "hail.log"), "tmp_dir": tmp, "local_tmpdir": tmp}
    if args.master:
        init.update(master=args.master, spark_conf={"spark.driver.memory": args.driver_memory,
                                                    "spark.ui.enabled": "false",
                                                    "spark.sql.shuffle.partitions": "8"})
    hl.init(**init)
    pipes_context = job_pipes()
    try:
        pipes = pipes_context.__enter__() if pipes_context else None
        result = run(manifest, pipes, None if "://" in manifest.result_uri else os.path.join(tmp, "spark"))
        write_text(manifest.result_uri, result.to_json())
    finally:
        if pipes_context:
            pipes_context.__exit__(*sys.exc_info())
        hl.stop()
    failed = sum(not o.ok for o in result.outcomes)
    print(f"converted {len(result.outcomes) - failed} of {len(result.outcomes)} VCFs in {result.seconds:.1f} s",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
