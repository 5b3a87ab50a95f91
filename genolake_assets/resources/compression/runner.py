"""Where the BAM compression program runs: the runners' interface.

:class:`CompressionRunner` is the capability; the local profile's ``LocalCompressionRunner`` (``local.py``)
runs the program as a subprocess, the aws profile's ``AwsBatchCompressionRunner`` (``batch.py``) as an
AWS Batch job.

Both runners start the same program, ``python -m genolake_assets.programs.bam_compress --work-order <uri>``
(the Docker image's ENTRYPOINT on Batch), stream its log to the caller line by line and wait for it.
The caller has already written the work order to ``work_order_uri``; the program writes its result
JSON to the work order's ``result_uri``, which the runner reads back through the caller's
``read_result`` once the program has ended.

A run never outlives its Dagster run: on a timeout, a ``KeyboardInterrupt`` or Dagster's
``DagsterExecutionInterruptedError`` (a run being terminated) the local process group is killed or
the Batch job terminated. dagster-aws has no Pipes client for Batch, hence the small
submit / poll / stream-the-log resource in ``batch.py``.
"""

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

ENTRYPOINT_MODULE = "genolake_assets.programs.bam_compress"
LOG_TAIL_LINES = 50


@dataclass
class RunnerOutcome:
    job_id: str
    exit_code: int | None
    status: str  # "SUCCEEDED" | "FAILED" | "CANCELLED"
    result: dict | None = None
    log_tail: list[str] = field(default_factory=list)
    reason: str | None = None


class CompressionRunner(dg.ConfigurableResource):
    """Runs the compression program on one work order (one per profile; see the module docstring)."""

    @abstractmethod
    def run(self, work_order: dict, work_order_uri: str, read_result: Callable[[str], dict | None],
            log: Callable[[str], None]) -> RunnerOutcome:
        """Run the program on the work order at ``work_order_uri`` and wait for it to end.

        ``log`` receives each line of the program's log as it arrives; ``read_result(uri)`` reads the
        result JSON (None when absent). Interrupts stop the program and propagate.
        """
