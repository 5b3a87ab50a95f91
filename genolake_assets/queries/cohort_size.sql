-- Samples of a sub-population: converted, on :assembly, sample name LIKE :sample_pattern.
SELECT count(*) AS samples
FROM samples
WHERE status = 'converted'
  AND reference_genome = :assembly
  AND sample_name LIKE :sample_pattern
