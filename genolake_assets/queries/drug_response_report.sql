-- The cohort drug-response report (Athena / Trino dialect; run locally on DuckDB after sqlglot transpiling).
--
-- For a sub-population of samples (sample name LIKE :sample_pattern, converted, on :assembly), count
-- the samples carrying each genotype of each variant that ClinVar classifies with a clinical
-- significance LIKE :significance_pattern (case-insensitive), and give two frequencies side by side:
--   seed_frequency   = carriers / all samples of the sub-population (the seed pipeline's figure);
--   called_frequency = carriers / samples of the sub-population with a call at that site: a fully
--                      called genotype there, or a gVCF reference block covering it. A sample that
--                      was not called at the site is unknown, not hom-ref.
-- Reads the locus-ordered cohort_variants table (variant rows and reference blocks of every sample,
-- few large files) rather than the per-sample tables. Top :result_limit rows by called frequency.
WITH cohort AS (
    SELECT sample_id
    FROM samples
    WHERE status = 'converted'
      AND reference_genome = :assembly
      AND sample_name LIKE :sample_pattern
),
cohort_size AS (
    SELECT count(*) AS samples FROM cohort
),
clinvar_matches AS (
    SELECT chromosome,
           position_vcf,
           reference_allele_vcf,
           alternate_allele_vcf,
           min(variation_id) AS variation_id,
           min(rs_id) AS rs_id,
           array_join(array_sort(array_distinct(flatten(array_agg(gene_symbols)))), ';') AS genes,
           array_join(array_sort(array_agg(DISTINCT clinical_significance)), '; ') AS clinical_significance,
           array_join(array_sort(array_agg(DISTINCT review_status)), '; ') AS review_status,
           array_join(array_sort(array_distinct(flatten(array_agg(phenotype_list)))), '; ') AS phenotypes
    FROM clinvar
    WHERE assembly = :assembly
      AND lower(clinical_significance) LIKE lower(:significance_pattern)
      AND position_vcf IS NOT NULL
    GROUP BY chromosome, position_vcf, reference_allele_vcf, alternate_allele_vcf
),
carriers AS (
    SELECT v.sample_id,
           regexp_replace(v.contig, '^chr', '') AS chromosome,
           v.pos,
           v.ref,
           v.alt,
           CASE WHEN v.gt_phased
                THEN array_join(transform(v.gt, allele -> coalesce(CAST(allele AS varchar), '.')), '|')
                ELSE array_join(transform(array_sort(v.gt), allele -> coalesce(CAST(allele AS varchar), '.')), '/')
           END AS genotype
    FROM cohort_variants AS v
    JOIN cohort AS c ON c.sample_id = v.sample_id
    WHERE v.kind = 'variant' AND contains(v.gt, 1)
),
annotated AS (
    SELECT k.*, m.variation_id, m.rs_id, m.genes, m.clinical_significance, m.review_status, m.phenotypes
    FROM carriers AS k
    JOIN clinvar_matches AS m
      ON m.chromosome = k.chromosome
     AND m.position_vcf = k.pos
     AND m.reference_allele_vcf = k.ref
     AND m.alternate_allele_vcf = k.alt
),
sites AS (
    SELECT DISTINCT chromosome, pos FROM annotated
),
calls AS (
    SELECT x.sample_id,
           regexp_replace(x.contig, '^chr', '') AS chromosome,
           x.pos AS first_pos,
           CASE WHEN x.kind = 'reference_block' THEN coalesce(x."end", x.pos) ELSE x.pos END AS last_pos
    FROM cohort_variants AS x
    JOIN cohort AS c ON c.sample_id = x.sample_id
    WHERE x.kind = 'reference_block'
       OR (x.gt IS NOT NULL AND cardinality(x.gt) > 0
           AND (cardinality(filter(x.gt, allele -> allele IS NULL)) = 0 OR contains(x.gt, 1)))
),
called AS (
    SELECT s.chromosome, s.pos, count(DISTINCT x.sample_id) AS called_samples
    FROM sites AS s
    JOIN calls AS x
      ON x.chromosome = s.chromosome AND s.pos BETWEEN x.first_pos AND x.last_pos
    GROUP BY s.chromosome, s.pos
)
SELECT a.chromosome,
       a.pos,
       a.ref,
       a.alt,
       a.genotype,
       count(*) AS samples_with_genotype,
       max(z.samples) AS cohort_samples,
       max(d.called_samples) AS called_samples,
       CAST(count(*) AS double) / max(z.samples) AS seed_frequency,
       CAST(count(*) AS double) / max(d.called_samples) AS called_frequency,
       a.variation_id,
       a.rs_id,
       a.genes,
       a.clinical_significance,
       a.review_status,
       a.phenotypes
FROM annotated AS a
CROSS JOIN cohort_size AS z
JOIN called AS d ON d.chromosome = a.chromosome AND d.pos = a.pos
GROUP BY a.chromosome, a.pos, a.ref, a.alt, a.genotype, a.variation_id, a.rs_id, a.genes,
         a.clinical_significance, a.review_status, a.phenotypes
ORDER BY called_frequency DESC, seed_frequency DESC, a.chromosome, a.pos, a.alt, a.genotype
LIMIT :result_limit
