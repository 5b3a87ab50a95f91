"""The VCF → Parquet engine as a resource (the in-process converter in the local profile)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from genolake_assets.lib.vcf_convert import ConversionReport, convert_to_staging


class ConverterResource(dg.ConfigurableResource):
    """Converts one VCF's samples into staged, verified Parquet files."""

    engine: str = "arrow"

    def convert(self, vcf_path: Path, sample_ids: dict[str, str], staging: Path,
                pseudonymous: bool = False) -> ConversionReport:
        """Convert the samples ``sample_ids`` names (VCF name → the id they are registered under).

        ``pseudonymous``: the tables' ``sample_name`` column holds the (pseudonymous) id as well, so the
        real name stays in the samples table only (docs/phi.md)."""
        if self.engine != "arrow":
            raise ValueError(f"unknown conversion engine {self.engine!r} (available: arrow)")
        if pseudonymous:
            return convert_to_staging(vcf_path, staging, list(sample_ids), sample_ids=sample_ids,
                                      name_columns=dict(sample_ids))
        return convert_to_staging(vcf_path, staging, list(sample_ids), sample_ids=sample_ids)
