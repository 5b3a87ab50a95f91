-- Trace a report row back to its files (Athena / Trino dialect): every sample carrying the variant
-- :chromosome:pos:ref>alt, with the landed file, its checksum and the lake's raw copy.
-- :chromosome is given without "chr" (as in the report); both spellings of the contig match.
SELECT v.sample_id,
       s.sample_name,
       CASE WHEN v.gt_phased
            THEN array_join(transform(v.gt, allele -> coalesce(CAST(allele AS varchar), '.')), '|')
            ELSE array_join(transform(array_sort(v.gt), allele -> coalesce(CAST(allele AS varchar), '.')), '/')
       END AS genotype,
       s.source_uri,
       s.sha256,
       s.raw_uri,
       s.converted_at
FROM cohort_variants AS v
JOIN samples AS s ON s.sample_id = v.sample_id
WHERE v.kind = 'variant'
  AND v.contig IN (CAST(:chromosome AS varchar), concat('chr', CAST(:chromosome AS varchar)))
  AND v.pos = :pos
  AND v.ref = :ref
  AND v.alt = :alt
  AND contains(v.gt, 1)
ORDER BY v.sample_id
