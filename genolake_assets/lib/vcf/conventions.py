"""Callers' conventions for alleles that make no variant row, shared by both engines.

The in-process converter (``lib/vcf/rows.py``) and the Hail job (``spark/vcf_to_parquet.py``) import these,
so a caller quirk (say, a new symbolic reference allele) is taught to both in one place.
"""

SYMBOLIC_REFERENCE = ("<NON_REF>", "<*>")
"""gVCF reference-block alleles: GATK writes ``<NON_REF>``, bcftools/DRAGEN ``<*>``."""
SPANNING_DELETION = "*"
"""An allele deleted by an upstream deletion (VCF 4.2+): no row of its own."""
NO_ROW_ALLELES = (*SYMBOLIC_REFERENCE, SPANNING_DELETION, ".")
"""ALT values that never make a variant row (``.`` is a missing ALT)."""
