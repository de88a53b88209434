-- mart_export_restrictions_index: export restrictions indexed to 2009 = 1, for China (CHN) and the world.
--
-- Grain: one row per (country_scope, basis, index_year, reference_line).
-- basis 'published': every statement of ref_export_restrictions_trend that gives an index (2009 = 1) for
-- CHN or WORLD, with its source and a verification status read from the row: 'unverified claim' when the
-- file marks it NOT VERIFIED or it has no source (the op-ed's "ninefold"), 'OECD publication' for oecd.org
-- and oecd-ilibrary.org pages, 'secondary source' otherwise. '>'/'>=' statements ("more than fivefold")
-- give their lower bound in index_2009_eq_1.
-- basis 'computed': for every year fact_export_restrictions holds, the measures counted there (WORLD: all
-- countries; CHN: only years with Chinese measures) and the index against 2009 when 2009 is loaded. WORLD
-- is only as complete as the loaded extract (countries_covered). With the bundled excerpt (2024 only, no
-- China) the computed index is null.
WITH published AS (
    SELECT
        country AS country_scope,
        'published' AS basis,
        period_end AS index_year,
        index_value AS index_2009_eq_1,
        index_qualifier,
        index_as_published,
        NULL::BIGINT AS measures_2009,
        measure_count AS measures_in_year,
        NULL::INTEGER AS countries_covered,
        what_is_counted,
        CASE
            WHEN source_url IS NULL OR coalesce(notes, '') ILIKE 'NOT VERIFIED%' THEN 'unverified claim'
            WHEN regexp_matches(source_url, '^https?://([a-z0-9-]+[.])*(oecd[.]org|oecd-ilibrary[.]org)/')
                THEN 'OECD publication'
            ELSE 'secondary source'
        END AS verification,
        source_url,
        source_title,
        as_published,
        reference_line
    FROM ref_export_restrictions_trend
    WHERE country IN ('CHN', 'WORLD') AND index_value IS NOT NULL
),
counts AS (
    -- NO_RESTRICTION records (a country restricting nothing on a commodity) are no measures
    SELECT 'WORLD' AS country_scope, period_year, count(*) AS measures,
           count(DISTINCT ref_area_iso3) AS countries
    FROM fact_export_restrictions
    WHERE policy_type IS DISTINCT FROM 'NO_RESTRICTION'
    GROUP BY period_year
    UNION ALL
    SELECT 'CHN', period_year, count(*), 1
    FROM fact_export_restrictions
    WHERE ref_area_iso3 = 'CHN' AND policy_type IS DISTINCT FROM 'NO_RESTRICTION'
    GROUP BY period_year
),
computed AS (
    SELECT
        c.country_scope,
        'computed' AS basis,
        c.period_year AS index_year,
        CASE WHEN b.measures > 0 THEN c.measures::DOUBLE / b.measures END AS index_2009_eq_1,
        CASE WHEN b.measures > 0 THEN '=' END AS index_qualifier,
        NULL AS index_as_published,
        b.measures AS measures_2009,
        c.measures AS measures_in_year,
        c.countries::INTEGER AS countries_covered,
        'measures (commodity x type x variation) recorded in fact_export_restrictions, NO_RESTRICTION records left out' AS what_is_counted,
        'counted in the warehouse' AS verification,
        NULL AS source_url,
        NULL AS source_title,
        NULL AS as_published,
        0 AS reference_line
    FROM counts AS c
    LEFT JOIN counts AS b ON b.country_scope = c.country_scope AND b.period_year = 2009
)
SELECT * FROM published
UNION ALL
SELECT * FROM computed
ORDER BY country_scope, index_year, basis, reference_line
