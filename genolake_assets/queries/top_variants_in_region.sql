-- The most-carried variants in a region, on the locus-ordered cohort table (Athena / Trino dialect).
-- Only the bins the region covers are read: :bin_size must be the cohort's bin size.
SELECT contig,
       pos,
       ref,
       alt,
       count(*) AS carriers,
       count_if(cardinality(filter(gt, allele -> allele = 1)) >= 2) AS homozygous_carriers
FROM cohort_variants
WHERE contig = CAST(:contig AS varchar)
  AND bin BETWEEN CAST(floor(CAST(:region_start AS double) / :bin_size) AS integer)
              AND CAST(floor(CAST(:region_end AS double) / :bin_size) AS integer)
  AND pos BETWEEN :region_start AND :region_end
  AND kind = 'variant'
  AND contains(gt, 1)
GROUP BY contig, pos, ref, alt
ORDER BY carriers DESC, pos, alt
LIMIT :result_limit
