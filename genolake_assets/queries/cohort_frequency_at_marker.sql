-- Genotype frequencies at one marker, on the locus-ordered cohort table (Athena / Trino dialect).
-- Reads one partition (contig, bin): :bin_size must be the cohort's bin size (registry/cohort/state.json).
-- called_samples: samples with a fully called genotype at :pos or a reference block covering it.
WITH at_marker AS (
    SELECT sample_id, kind, pos, ref, alt, gt, gt_phased
    FROM cohort_variants
    WHERE contig = CAST(:contig AS varchar)
      AND bin = CAST(floor(CAST(:pos AS double) / :bin_size) AS integer)
      AND pos <= :pos
      AND "end" >= :pos
),
called AS (
    SELECT count(DISTINCT sample_id) AS called_samples
    FROM at_marker
    WHERE kind = 'reference_block'
       OR (pos = :pos AND cardinality(gt) > 0 AND cardinality(filter(gt, allele -> allele IS NULL)) = 0)
)
SELECT v.ref,
       v.alt,
       CASE WHEN v.gt_phased
            THEN array_join(transform(v.gt, allele -> coalesce(CAST(allele AS varchar), '.')), '|')
            ELSE array_join(transform(array_sort(v.gt), allele -> coalesce(CAST(allele AS varchar), '.')), '/')
       END AS genotype,
       count(*) AS samples_with_genotype,
       max(c.called_samples) AS called_samples,
       CAST(count(*) AS double) / max(c.called_samples) AS called_frequency
FROM at_marker AS v
CROSS JOIN called AS c
WHERE v.kind = 'variant' AND v.pos = :pos AND contains(v.gt, 1)
GROUP BY 1, 2, 3
ORDER BY called_frequency DESC, v.alt, genotype
