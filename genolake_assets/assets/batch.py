"""Running a partitioned asset over several partitions where one bad sample must not sink the rest."""


from collections.abc import Callable, Sequence
from typing import TypeVar

import dagster as dg

T = TypeVar("T")


def each_partition(context: dg.AssetExecutionContext, keys: Sequence[str], work: Callable[[str], T],
                   ) -> tuple[dict[str, T], dict[str, str]]:
    """Run ``work`` per key; collect failures instead of stopping at the first."""
    done: dict[str, T] = {}
    failed: dict[str, str] = {}
    for key in keys:
        try:
            done[key] = work(key)
        except dg.Failure as exc:
            failed[key] = exc.description or str(exc)
            context.log.error(f"{key}: {failed[key]}")
    return done, failed


def fail_for_bad_partitions(context: dg.AssetExecutionContext, asset_keys: Sequence[dg.AssetKey],
                            done: dict, failed: dict[str, str],
                            metadata_of: Callable[[str, dg.AssetKey], dict]) -> None:
    """Record the good partitions of a multi-partition run, then fail the run naming the bad ones.

    ``metadata_of(partition key, asset key)``: each asset's event describes its own files."""
    if not failed:
        return
    for key in done:
        for asset_key in asset_keys:
            context.log_event(dg.AssetMaterialization(asset_key=asset_key, partition=key, metadata=metadata_of(key, asset_key)))
    summary = "; ".join(f"{k}: {v}" for k, v in failed.items())
    raise dg.Failure(description=f"{len(failed)} of {len(done) + len(failed)} samples failed (quarantined): "
                     f"{summary}", metadata={"failed_samples": list(failed), "succeeded": len(done)})
