"""Where the cohort update runs, as a resource (docs/cohort-layout.md, "Where the update runs").

``engine="in-process"``: the streaming update in the orchestrator's process (lib/cohort/layout.py), the
default on one machine. ``engine="spark"``: the distributed update, ``spark/cohort_update.py``, here on local
Spark in a child process (resources/cohort/local_spark.py); the aws profile runs the same job on a transient
EMR cluster (:mod:`genolake_assets.resources.cohort.emr_spark`). Either way the update's files land under
``cohort/`` and lib/cohort/build.py publishes the manifest.
"""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from genolake_assets.lib.cohort.build import CohortUpdater, update_in_process
from genolake_assets.resources.cohort.local_spark import local_spark_updater
from genolake_assets.resources.processes import EngineUnavailable
from genolake_assets.settings import COHORT_ENGINES


class CohortEngine(dg.ConfigurableResource):
    """Runs one cohort update (lib/cohort/build.py publishes it)."""

    engine: str = "in-process"
    spark_master: str = "local[2]"
    """``engine=spark`` only: the local Spark master."""
    driver_memory: str = "1g"
    timeout_seconds: int = 6 * 3600

    def updater(self, context, log: Callable[[str], None]) -> CohortUpdater:
        """The update this engine runs; ``context``: the Dagster run's (None from the command line)."""
        if self.engine == "in-process":
            return update_in_process
        if self.engine == "spark":
            return local_spark_updater(log, self.spark_master, self.driver_memory, self.timeout_seconds,
                                       run_id=context.run_id if context is not None else "")
        raise ValueError(f"unknown cohort engine {self.engine!r} (available: {', '.join(COHORT_ENGINES)})")


__all__ = ["COHORT_ENGINES", "CohortEngine", "EngineUnavailable"]
