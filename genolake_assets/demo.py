"""The demo: land the bundled real VCFs and run the whole ingest through Dagster, locally."""

import os
import shutil
import stat
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from genolake_assets.lib.lake.layout import REFERENCE_BLOCKS_TABLE, VARIANTS_TABLE, VCF_SUFFIXES, is_vcf_key

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "data" / "vcf"
DEFAULT_BAMS = Path(__file__).resolve().parents[1] / "data" / "bam"
DEFAULT_CLINVAR = Path(__file__).resolve().parents[1] / "data" / "clinvar" / "variant_summary_2021-01.first86362rows.txt.gz"
# The bundled cohort is GRCh37 and its ClinVar matches are all classified (likely) benign or conflicting:
# the first report shows the two frequencies on real matches, the second is the seed's own question.
DEMO_REPORTS = {
    "benign_in_hg_samples": {"sample_pattern": "HG%", "significance_pattern": "%benign%", "assembly": "GRCh37"},
    "seed_drug_response": {"sample_pattern": "%", "significance_pattern": "%drug response%", "assembly": "GRCh37"},
}
# A demo home says what it is: ``--fresh`` deletes a folder only when it holds this marker (written when
# the demo creates the home), or is a home an earlier version made (nothing but the entries a home has,
# no links among them, with dagster_home/dagster.yaml or lake/), or is empty.
HOME_MARKER = ".genolake-home"
HOME_MARKER_TEXT = "genolake demo home: `genolake demo --fresh` may delete this folder\n"
HOME_ENTRIES = frozenset({
    HOME_MARKER, "dagster_home", "lake", "scratch", "transfers", "sequencer-share", "dagster-dev.log",
    "catalog.duckdb", "catalog.duckdb.wal", "file_catalog.sqlite", "file_catalog.sqlite-journal",
    "file_catalog.sqlite-wal", "file_catalog.sqlite-shm"})
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class DemoSummary:
    home: Path
    lake: Path
    dagster_home: Path
    samples: int
    converted: int
    quarantined: int
    variant_rows: int
    reference_block_rows: int
    lake_bytes: int
    cohort_rows: int
    clinvar_rows: int
    clinvar_rejected_rows: int
    reports: dict[str, dict]
    alignments: dict[str, dict]
    file_catalog: str
    seconds: float


def vcfs_to_land(data_dir: Path) -> list[Path]:
    """Every VCF (``*.vcf``, ``*.vcf.gz``, ``*.vcf.bgz``) under ``data_dir``, in sub-folders too.

    Landing keys are file names, so two files of one name in different folders are refused up front.
    """
    if not data_dir.is_dir():
        raise FileNotFoundError(f"{data_dir} is not a folder of VCFs")
    files = sorted(path for path in data_dir.rglob("*") if path.is_file() and is_vcf_key(path.name))
    if not files:
        raise FileNotFoundError(f"no VCFs (*{', *'.join(VCF_SUFFIXES)}) under {data_dir}")
    by_name: dict[str, list[Path]] = defaultdict(list)
    for path in files:
        by_name[path.name].append(path)
    clashes = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    if clashes:
        name, paths = next(iter(clashes.items()))
        raise ValueError(f"{len(clashes)} file name(s) occur twice under {data_dir}, e.g. {name}: "
                         f"{', '.join(str(p) for p in paths)}; landing keys are file names, rename one")
    return files


class NotAGenolakeHome(ValueError):
    """``--fresh`` named a folder the demo must not delete."""


def _is_regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def home_kind(home: Path) -> str:
    """``missing``, ``marked`` (holds the marker), ``earlier`` (an earlier demo's home, no marker yet),
    ``empty``, or why it is not a genolake home. Symbolic links are never followed."""
    try:
        mode = os.lstat(home).st_mode
    except FileNotFoundError:
        return "missing"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if not stat.S_ISDIR(mode):
        return "not a folder"
    entries = set(os.listdir(home))
    if not entries:
        return "empty"
    if _is_regular_file(home / HOME_MARKER):
        return "marked"
    if entries <= HOME_ENTRIES and not any(os.path.islink(home / e) for e in entries) and (
            _is_regular_file(home / "dagster_home" / "dagster.yaml") or _is_real_dir(home / "lake")):
        return "earlier"
    return f"a folder without the {HOME_MARKER} marker of a genolake home"


def check_fresh_home(home: Path) -> None:
    """Raise :class:`NotAGenolakeHome` unless ``--fresh`` may delete ``home`` (absent is fine)."""
    kind = home_kind(home)
    if kind not in ("missing", "marked", "earlier", "empty"):
        raise NotAGenolakeHome(
            f"--fresh refuses to delete {home}: it is {kind}, not a genolake home (a home the demo made holds "
            f"{HOME_MARKER}); name a new folder, or remove this one yourself")


def _remove_home(home: Path) -> None:
    """Delete the home without following a symbolic link (neither the home nor anything inside it)."""
    if not shutil.rmtree.avoids_symlink_attacks:  # pragma: no cover - Linux and macOS have the fd-based rmtree
        raise NotAGenolakeHome(f"--fresh: this platform cannot delete {home} without following links")
    shutil.rmtree(home)  # refuses a link as its top, unlinks (never enters) links inside


def prepare_home(home: Path, fresh: bool) -> Path:
    """The home, created (and emptied first with ``fresh``, if it is a genolake home); its resolved path.

    The marker is written only into a folder the demo owns: one it creates, an empty one, or an earlier
    demo's home; never into someone's folder that merely is named as the home.
    """
    home = Path(os.path.abspath(home))  # absolute, but links are not resolved before the checks
    kind = home_kind(home)
    if fresh:
        check_fresh_home(home)
        if kind != "missing":
            _remove_home(home)
        kind = "missing"
    home.mkdir(parents=True, exist_ok=True)
    if kind in ("missing", "empty", "earlier"):
        (home / HOME_MARKER).write_text(HOME_MARKER_TEXT)
    return home.resolve()


def run_demo(home: Path, data_dir: Path = DEFAULT_DATA, fresh: bool = False, echo=print,
             clinvar: Path = DEFAULT_CLINVAR) -> DemoSummary:
    started = time.perf_counter()
    vcfs = vcfs_to_land(data_dir)  # before --fresh removes anything
    home = prepare_home(home, fresh)
    dagster_home = home / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    settings = dagster_home / "dagster.yaml"
    if not settings.exists():
        # cohort_writer (the cohort table) must have one writer at a time: pools default to a limit of 1.
        settings.write_text("telemetry:\n  enabled: false\nconcurrency:\n  pools:\n    default_limit: 1\n")
    os.environ.update(GENOLAKE_PROFILE="local", GENOLAKE_HOME=str(home), DAGSTER_HOME=str(dagster_home))
    # The demo's ClinVar is a bundled file: the demo, as its operator, allows that one folder.
    allowed = [p for p in os.environ.get("GENOLAKE_CLINVAR_LOCAL_DIRS", "").split(os.pathsep) if p]
    os.environ["GENOLAKE_CLINVAR_LOCAL_DIRS"] = os.pathsep.join([*allowed, str(clinvar.resolve().parent)])

    import dagster as dg

    from genolake_assets.definitions import defs, resources
    from genolake_assets.run_recovery import fail_dead_runs, job_pools, remove_dead_runs_scratch, wait_for_free_pools
    from genolake_assets.sensors.landing import landing_sensor

    instance = dg.DagsterInstance.get()
    lake = resources["lake"]
    store = lake.store()
    # A run of an earlier demo that was killed still holds its pool slots: free them, or this one waits for ever.
    for dead in fail_dead_runs(instance):
        echo(f"recovered: {dead.describe()}")
    if removed := remove_dead_runs_scratch(instance, lake.scratch, lake.local_root):
        echo(f"recovered: removed {len(removed)} scratch and temporary file(s) that killed runs left")
    for path in vcfs:
        store.upload(path, f"landing/{path.name}")
    echo(f"landed {len(vcfs)} VCFs in {store.uri('landing')}/")

    result = landing_sensor(dg.build_sensor_context(instance=instance, resources={"lake": lake}))
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    by_file: dict[str, list[str]] = defaultdict(list)
    for request in result.run_requests or []:
        # Pseudonymised runs carry no file name (docs/phi.md): they are ingested as one range instead.
        by_file[request.tags.get("genolake/source_uri", "")].append(request.partition_key)
    if "" in by_file:
        wanted = set(by_file[""])
        by_file[""] = [key for key in instance.get_dynamic_partitions("samples") if key in wanted]
    echo(f"landing sensor: {sum(len(v) for v in by_file.values())} sample partitions from {len(by_file)} files")
    if resources["converter"].engine == "hail":  # one batch: one Spark session for every file
        everything = {key for keys in by_file.values() for key in keys}
        by_file = {"every landed file (one Hail batch)": [k for k in instance.get_dynamic_partitions("samples")
                                                         if k in everything]}

    job = defs.resolve_job_def("ingest_samples")
    failures = 0
    wait_for_free_pools(instance, job_pools(job), echo)
    for source, keys in by_file.items():
        tags = {RANGE_START: keys[0], RANGE_END: keys[-1]} if len(keys) > 1 else {}
        run = job.execute_in_process(instance=instance, partition_key=None if tags else keys[0], tags=tags,
                                     raise_on_error=False, run_config=QUIET_LOGS)
        failures += 0 if run.success else 1
        where = Path(source).name or "pseudonymised files"
        echo(f"  {'ok ' if run.success else 'FAILED'} {len(keys):>3} sample(s) from {where} "
             f"(run {run.run_id[:8]})")
    defs.resolve_job_def("refresh_catalog").execute_in_process(instance=instance, run_config=QUIET_LOGS)
    cohort_job = defs.resolve_job_def("refresh_cohort")
    wait_for_free_pools(instance, job_pools(cohort_job), echo)
    cohort_run = cohort_job.execute_in_process(instance=instance, run_config=QUIET_LOGS)
    cohort_meta = _materialization_metadata(cohort_run, "cohort_variants")
    echo(f"cohort_variants: {cohort_meta['samples']} samples, {cohort_meta['rows']:,} rows in "
         f"{cohort_meta['partitions']} locus partitions ({cohort_meta['files']} files)")

    clinvar_run = defs.resolve_job_def("refresh_clinvar").execute_in_process(
        instance=instance, run_config={**QUIET_LOGS, "ops": {"clinvar_source": {"config": {"uri": str(clinvar)}}}})
    clinvar_meta = _materialization_metadata(clinvar_run, "clinvar_variants")
    echo(f"ClinVar {clinvar.name}: {clinvar_meta['rows']:,} rows, {clinvar_meta['rejected_rows']} rejected")

    reports = {}
    for name, config in DEMO_REPORTS.items():
        run = defs.resolve_job_def("drug_response").execute_in_process(
            instance=instance, run_config={**QUIET_LOGS, "ops": {"drug_response_report": {"config": config}}})
        meta = _materialization_metadata(run, "drug_response_report")
        reports[name] = {**config, "rows": meta["rows"], "cohort_samples": meta["cohort_samples"],
                         "seconds": meta["query_seconds"], "bytes_scanned": meta["bytes_scanned"],
                         "csv_uri": meta["csv_uri"]}
        echo(f"report {name}: {meta['rows']} rows over {meta['cohort_samples']} samples "
             f"({meta['query_seconds'] * 1000:.0f} ms, {meta['bytes_scanned']:,} bytes read)")
    alignments = _compress_bams(defs, instance, store, lake, echo)
    summary = _summary(home, dagster_home, resources["catalog"], store, cohort_meta, clinvar_meta, reports,
                       time.perf_counter() - started)
    summary.alignments, summary.file_catalog = alignments, resources["file_catalog"].describe()
    return summary


def _compress_bams(defs, instance, store, lake, echo, bam_dir: Path = DEFAULT_BAMS) -> dict[str, dict]:
    """Land the bundled BAMs and their references, and let the sensor's runs compress and catalogue them."""
    import dagster as dg

    from genolake_assets.sensors.alignments import alignment_landing_sensor

    for path in sorted(bam_dir.glob("*.bam")):
        store.upload(path, f"landing/{path.name}")
    for path in sorted((bam_dir / "ref").iterdir()):
        store.upload(path, f"landing/references/{path.name}")
    result = alignment_landing_sensor(dg.build_sensor_context(instance=instance, resources={"lake": lake}))
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    alignments = {}
    for request in result.run_requests:
        job = defs.resolve_job_def(request.job_name)
        run = job.execute_in_process(instance=instance, partition_key=request.partition_key, raise_on_error=False,
                                     run_config=QUIET_LOGS)
        if request.partition_key is None:
            continue
        if not run.success:
            alignments[request.partition_key] = {"status": "failed"}
            echo(f"  FAILED compressing {request.partition_key} (run {run.run_id[:8]})")
            continue
        meta = _materialization_metadata(run, "compressed_bam")
        alignments[request.partition_key] = {"status": "verified", "records": meta["records"], "ratio": meta["ratio"],
                                             "bam_bytes": meta["bam_bytes"], "cram_bytes": meta["cram_bytes"],
                                             "cram_uri": meta["cram_uri"]}
        echo(f"compressed_bam {request.partition_key}: {meta['records']:,} reads verified, {meta['bam_bytes']:,} -> "
             f"{meta['cram_bytes']:,} bytes ({meta['ratio']:.2f}x), original tagged for archive")
    lifecycle = defs.resolve_job_def("apply_lifecycle_policy").execute_in_process(instance=instance, run_config=QUIET_LOGS)
    plan = _materialization_metadata(lifecycle, "lake_lifecycle_policy")["summary"]
    echo("lifecycle plan: " + ", ".join(f"{label}: {n['objects']} objects" for label, n in sorted(plan.items())))
    return alignments


def _materialization_metadata(run, asset: str) -> dict:
    for event in run.get_asset_materialization_events():
        if event.asset_key.to_user_string() == asset:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise RuntimeError(f"run {run.run_id} did not materialise {asset}")


def _summary(home: Path, dagster_home: Path, catalog, store, cohort_meta: dict, clinvar_meta: dict,
             reports: dict, seconds: float) -> DemoSummary:
    status = {r["status"]: r["n"] for r in
              catalog.query("SELECT status, count(*) AS n FROM samples GROUP BY status").to_pylist()}
    variant_rows = catalog.query("SELECT count(*) AS n FROM variants").to_pylist()[0]["n"]
    block_rows = catalog.query("SELECT count(*) AS n FROM reference_blocks").to_pylist()[0]["n"]
    lake_bytes = sum(o.size for prefix in (f"{VARIANTS_TABLE}/", f"{REFERENCE_BLOCKS_TABLE}/") for o in store.list_objects(prefix))
    return DemoSummary(home=home, lake=home / "lake", dagster_home=dagster_home, samples=sum(status.values()),
                       converted=status.get("converted", 0), quarantined=status.get("quarantined", 0),
                       variant_rows=variant_rows, reference_block_rows=block_rows, lake_bytes=lake_bytes,
                       cohort_rows=cohort_meta["rows"], clinvar_rows=clinvar_meta["rows"],
                       clinvar_rejected_rows=clinvar_meta["rejected_rows"],
                       reports=reports, alignments={}, file_catalog="", seconds=seconds)
