"""Sequencer transfers: the sequencers' run folders as an external asset, and the job that starts a transfer.

The transfer itself (AWS DataSync, or the local copier) moves files into ``landing/sequencers/``; the
landing sensors then register them. Each execution's outcome is recorded as an observation of
``sequencer_runs`` by ``transfer_execution_sensor``.
"""

import dagster as dg

from genolake_assets.resources.transfer.transfer import TransferResource

sequencer_runs = dg.AssetSpec(
    "sequencer_runs", group_name="ingest", kinds={"datasync", "s3"}, owners=["team:genomics-data-engineering"],
    description="Run folders on the sequencers' storage (NFS/SMB), outside the lake. AWS DataSync (or the local copier) "
                "brings the last days' dated run folders, and folders named in ad-hoc manifests, into "
                "landing/sequencers/. Each transfer execution is an observation here: status, bytes, files, duration.",
)


class TransferRequest(dg.Config):
    includes: list[str]
    """Share-relative include patterns (DataSync SIMPLE_PATTERN syntax)."""
    reason: str = "manual"
    skip_if_active: bool = True
    """The schedule's rule: never start an execution while another is queued or running."""


@dg.op(description="Start one transfer execution with the given include filters, unless one is already queued or "
                   "running (for the schedule); ad-hoc manifests start theirs regardless, as DataSync queues them.")
def start_transfer(context: dg.OpExecutionContext, config: TransferRequest, transfer: TransferResource) -> dict:
    if config.skip_if_active:
        active = transfer.active()
        if active:
            context.log.info(f"not starting a transfer: {', '.join(f'{e.execution_id} ({e.status})' for e in active)} "
                             "is still queued or running")
            return {"started": None, "skipped_for": [e.execution_id for e in active]}
    execution = transfer.start(list(config.includes), config.reason)
    context.log.info(f"started transfer {execution.execution_id} ({execution.status}) for {config.reason}: "
                     f"{len(config.includes)} include pattern(s)")
    context.log_event(dg.AssetObservation(asset_key=sequencer_runs.key, metadata={
        "execution_id": execution.execution_id, "status": execution.status, "reason": config.reason,
        "includes": dg.MetadataValue.json(list(config.includes))}))
    return {"started": execution.execution_id, "status": execution.status}


@dg.job(name="start_sequencer_transfer", description="Start a sequencer → lake transfer (DataSync task execution, or "
                                                    "the local copier) with include filters.")
def start_sequencer_transfer():
    start_transfer()
