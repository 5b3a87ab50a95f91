"""Baseline: a plain pysam loop that reads every field, INFO value and FORMAT value."""

import sys

import pysam

records = 0
with pysam.VariantFile(sys.argv[1]) as vcf:
    for record in vcf:
        _site = (record.chrom, record.pos, record.stop, record.id, record.ref, record.alts,
                 record.qual, list(record.filter.keys()))
        _info = list(record.info.items())
        _format = [list(sample.items()) for sample in record.samples.values()]
        records += 1
print(records)
