-- Claim 3: "Between 2009 and 2020, Beijing restrictions on mineral exports increased ninefold".
--
-- Method: a China-only index 2020 vs 2009 is computed from fact_export_restrictions when it holds Chinese
-- measures for both years (ninefold = an index that rounds to 9); otherwise from a published China index
-- of a source that is not the op-ed (ref_export_restrictions_trend, not marked NOT VERIFIED). Either gives
-- supported (rounds to 9) or contradicted (it does not; a lower bound 'more than N' contradicts only if N
-- >= 9.5). Without either: not enough data. The world index (OECD) is reported for context: it concerns all
-- countries and cannot confirm or refute a China-only figure.
WITH china_counts AS (
    SELECT count(*) FILTER (WHERE period_year = 2009) AS n2009,
           count(*) FILTER (WHERE period_year = 2020) AS n2020
    FROM fact_export_restrictions WHERE ref_area_iso3 = 'CHN' AND policy_type IS DISTINCT FROM 'NO_RESTRICTION'
),
facts AS (
    SELECT count(*) AS measures, string_agg(DISTINCT period_year::VARCHAR, ', ' ORDER BY period_year::VARCHAR) AS years,
           string_agg(DISTINCT ref_area_iso3, ', ' ORDER BY ref_area_iso3) AS countries
    FROM fact_export_restrictions WHERE policy_type IS DISTINCT FROM 'NO_RESTRICTION'  -- a statement, no measure
),
published_china AS (
    SELECT * FROM ref_export_restrictions_trend
    WHERE country = 'CHN' AND index_value IS NOT NULL AND source_url IS NOT NULL
      AND coalesce(notes, '') NOT ILIKE 'NOT VERIFIED%'
      AND period_start = 2009 AND period_end = 2020
),
oped AS (
    SELECT * FROM ref_export_restrictions_trend
    WHERE country = 'CHN' AND coalesce(notes, '') ILIKE 'NOT VERIFIED%'
),
world AS (
    SELECT * FROM ref_export_restrictions_trend
    WHERE country = 'WORLD' AND index_value IS NOT NULL AND period_start = 2009 AND period_end = 2020
      AND source_url IS NOT NULL AND regexp_matches(source_url, '^https?://([a-z0-9-]+[.])*oecd[.]org/')
),
result AS (
    SELECT
        CASE WHEN c.n2009 > 0 AND c.n2020 > 0 THEN c.n2020::DOUBLE / c.n2009 END AS computed_index,
        (SELECT any_value(index_value) FROM published_china) AS published_index,
        (SELECT any_value(index_qualifier) FROM published_china) AS published_qualifier,
        (SELECT any_value(source_url) FROM published_china) AS published_url,
        c.n2009, c.n2020
    FROM china_counts AS c
)
SELECT
    'china_restrictions_ninefold' AS claim_id,
    3 AS claim_number,
    '"Between 2009 and 2020, Beijing restrictions on mineral exports increased ninefold".' AS claim_text,
    'quoted' AS wording,
    'multiplier' AS claim_kind,
    CASE
        WHEN r.computed_index IS NOT NULL
            THEN printf('China: %d measures in 2020 vs %d in 2009 (index %.2f)', r.n2020, r.n2009, r.computed_index)
        WHEN r.published_index IS NOT NULL
            THEN printf('China: published index %s%g (%s)', r.published_qualifier, r.published_index, r.published_url)
        ELSE printf('No China counts for 2009 or 2020 (fact_export_restrictions: %d measures, year(s) %s, '
                    'countries %s); no sourced China index', f.measures, coalesce(f.years, '-'),
                    coalesce(f.countries, '-'))
    END
    || coalesce((SELECT printf('; world (OECD): index %s (%s)', any_value(index_as_published),
                               any_value(period_label)) FROM world HAVING count(*) > 0), '') AS warehouse_figure,
    coalesce(r.computed_index, r.published_index) AS warehouse_value,
    'index, 2009 = 1 (China)' AS unit,
    '2009-2020' AS period_used,
    'China (CHN); world for context' AS scope_used,
    CASE
        WHEN r.computed_index IS NOT NULL
            THEN CASE WHEN round(r.computed_index) = 9 THEN 'supported' ELSE 'contradicted' END
        WHEN r.published_index IS NOT NULL
            THEN CASE WHEN r.published_qualifier = '=' AND round(r.published_index) = 9 THEN 'supported'
                      WHEN r.published_qualifier = '=' THEN 'contradicted'
                      WHEN r.published_index >= 9.5 THEN 'contradicted'
                      ELSE 'not enough data' END
        ELSE 'not enough data'
    END AS verdict,
    CASE
        WHEN r.computed_index IS NOT NULL OR r.published_index IS NOT NULL
            THEN 'China''s 2009-2020 index: ' || printf('%.2f', coalesce(r.computed_index, r.published_index)) || '.'
        ELSE 'The warehouse has no count of Chinese export restrictions for 2009 or 2020, and no source other than '
             || 'the op-ed gives a China-only multiplier'
             || CASE WHEN (SELECT count(*) FROM oped) > 0
                     THEN printf(' (the ''ninefold'' row, ref_export_restrictions_trend line %d, is the op-ed itself, '
                                 'marked NOT VERIFIED)', (SELECT min(reference_line) FROM oped)) ELSE '' END
             || '.'
             || coalesce((SELECT printf(' For the world, the OECD gives an index of %s for 2009-2020 (%s: "%s"); '
                                        'it concerns all countries and neither confirms nor refutes a China-only '
                                        'ninefold increase.',
                                        any_value(index_as_published), any_value(what_is_counted),
                                        any_value(as_published))
                          FROM world HAVING count(*) > 0), '')
    END AS verdict_detail,
    'fact_export_restrictions, ref_export_restrictions_trend' AS evidence_tables
FROM result AS r, facts AS f
