"""Baseline: polars-bio read_vcf (all INFO and FORMAT fields) written to one Parquet file.

Runs inside benchmarks/.venv-polarsbio, whose polars/pyarrow pins clash with the project's.
"""

import sys

import polars_bio

vcf_path, parquet_path = sys.argv[1], sys.argv[2]
frame = polars_bio.read_vcf(vcf_path)
frame.write_parquet(parquet_path)
print(frame.height)
