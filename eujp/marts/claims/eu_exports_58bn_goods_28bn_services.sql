-- Claim 1: the EU provides "over €58bn worth of goods and €28bn of services" to Japan (EU exports).
--
-- Method: look for EU exports to Japan (partner JP, flow export) equal to the claimed figures at the claim's
-- precision, whole billions of euro (round(value / 1000) = 58 and 28). Candidates are the warehouse's facts
-- (fact_goods_trade; fact_services_trade, total services) and every other published vintage
-- (ref_published_trade_figures). A fact match is preferred to another vintage, then the latest year.
-- Verdict: supported if both figures are found; contradicted if export figures of a type exist but none
-- matches; not enough data if a type has no export figure at all. scope_used says which EU aggregate the
-- matches are for and whether it includes the United Kingdom (dim_eu_aggregate_member). Where the figure
-- used (a fact or a vintage) and another published vintage of the same figure (same type, aggregate, year and
-- flow) disagree, the detail says so with both values, whatever the verdict.
WITH candidates AS (
    SELECT 'goods' AS trade_type, reporter, period_year, value_mio_eur, 1 AS is_fact,
           'fact_goods_trade' AS origin
    FROM fact_goods_trade WHERE partner = 'JP' AND flow = 'export'
    UNION ALL
    SELECT 'services', reporter, period_year, value_mio_eur, 1, 'fact_services_trade'
    FROM fact_services_trade WHERE partner = 'JP' AND flow = 'export' AND bop_item = 'S'
    UNION ALL
    SELECT trade_type, reporter, period_year, value_mio_eur, 0, source_title
    FROM ref_published_trade_figures WHERE partner = 'JP' AND flow = 'export'
),
claimed (trade_type, claimed_bn) AS (VALUES ('goods', 58), ('services', 28)),
matches AS (
    SELECT c.*, row_number() OVER (PARTITION BY c.trade_type ORDER BY c.is_fact DESC, c.period_year DESC,
                                   c.value_mio_eur) AS pick
    FROM candidates AS c JOIN claimed AS k USING (trade_type)
    WHERE round(c.value_mio_eur / 1000) = k.claimed_bn
),
best AS (
    SELECT m.*,
           (SELECT any_value(f.value_mio_eur) FROM candidates AS f
            WHERE f.is_fact = 1 AND f.trade_type = m.trade_type AND f.reporter = m.reporter
              AND f.period_year = m.period_year) AS fact_value,
           EXISTS (SELECT 1 FROM dim_eu_aggregate_member AS a
                   WHERE a.aggregate_code = m.reporter AND a.iso2 = 'GB') AS includes_uk
    FROM matches AS m WHERE pick = 1
),
disagreements AS (
    -- sorted: the detail is the same text whichever order the rows come in
    SELECT string_agg(line, '; ' ORDER BY line) AS text FROM (
    SELECT DISTINCT printf('%s %s %d: %s €%.1fbn, %s €%.1fbn', b.trade_type, b.reporter, b.period_year,
                                      CASE WHEN b.is_fact = 1 THEN 'warehouse' ELSE b.origin END,
                                      b.value_mio_eur / 1000,
                                      CASE WHEN o.is_fact = 1 THEN 'warehouse' ELSE o.origin END,
                                      o.value_mio_eur / 1000) AS line
    FROM best AS b
    JOIN candidates AS o
      ON o.trade_type = b.trade_type AND o.reporter = b.reporter AND o.period_year = b.period_year
     AND abs(o.value_mio_eur - b.value_mio_eur) >= 0.05
    )
),
g AS (SELECT * FROM best WHERE trade_type = 'goods'),
s AS (SELECT * FROM best WHERE trade_type = 'services'),
available AS (
    SELECT count(*) FILTER (WHERE trade_type = 'goods' AND is_fact = 1) AS goods_facts,
           count(*) FILTER (WHERE trade_type = 'services' AND is_fact = 1) AS services_facts
    FROM candidates
),
latest AS (  -- one row per trade type: the latest year, and in it the widest current aggregate first
    SELECT trade_type, reporter, period_year, value_mio_eur
    FROM candidates WHERE is_fact = 1
    QUALIFY row_number() OVER (PARTITION BY trade_type ORDER BY period_year DESC,
                               CASE reporter WHEN 'EU27_2020' THEN 0 WHEN 'EU28' THEN 1 WHEN 'EU27_2007' THEN 2
                                             ELSE 3 END, reporter) = 1
),
texts AS (
    SELECT
        (SELECT CASE WHEN count(*) = 0 THEN 'goods: no EU export figure rounds to €58bn'
                     ELSE printf('goods €%.1fbn (%s exports to Japan, %d%s)', any_value(value_mio_eur) / 1000,
                                 any_value(reporter), any_value(period_year),
                                 CASE WHEN any_value(is_fact) = 1 THEN ', warehouse value'
                                      ELSE ', published vintage: ' || any_value(origin) END) END FROM g) AS goods_text,
        (SELECT CASE WHEN count(*) = 0 THEN 'services: no EU export figure rounds to €28bn'
                     ELSE printf('services €%.1fbn (%s exports to Japan, %d%s)', any_value(value_mio_eur) / 1000,
                                 any_value(reporter), any_value(period_year),
                                 CASE WHEN any_value(is_fact) = 1 THEN ', warehouse value'
                                      ELSE ', published vintage: ' || any_value(origin)
                                           || coalesce(printf('; the warehouse now holds €%.1fbn for that year',
                                                              any_value(fact_value) / 1000), '') END) END
         FROM s) AS services_text,
        (SELECT string_agg(printf('%s %s %d €%.1fbn', trade_type, reporter, period_year, value_mio_eur / 1000),
                           ', ' ORDER BY trade_type) FROM latest) AS latest_text
)
SELECT
    'eu_exports_58bn_goods_28bn_services' AS claim_id,
    1 AS claim_number,
    'The EU provides "over €58bn worth of goods and €28bn of services" to Japan.' AS claim_text,
    'quoted' AS wording,
    'figure' AS claim_kind,
    d.goods_text || '; ' || d.services_text AS warehouse_figure,
    (SELECT any_value(value_mio_eur) / 1000 FROM g) AS warehouse_value,
    'EUR bn (goods exports)' AS unit,
    (SELECT coalesce(any_value(period_year)::VARCHAR, '-') FROM g) || ' (goods), '
        || (SELECT coalesce(any_value(period_year)::VARCHAR, '-') FROM s) || ' (services)' AS period_used,
    (SELECT string_agg(DISTINCT reporter || CASE WHEN includes_uk THEN ' (incl. UK)' ELSE '' END, ', '
                       ORDER BY reporter || CASE WHEN includes_uk THEN ' (incl. UK)' ELSE '' END)
     FROM best) AS scope_used,
    CASE
        WHEN (SELECT count(*) FROM g) = 1 AND (SELECT count(*) FROM s) = 1 THEN 'supported'
        WHEN a.goods_facts = 0 OR a.services_facts = 0 THEN 'not enough data'
        ELSE 'contradicted'
    END AS verdict,
    CASE
        WHEN (SELECT count(*) FROM g) = 1 AND (SELECT count(*) FROM s) = 1 THEN
            'Supported for ' || (SELECT any_value(period_year) FROM g) || ' goods / '
            || (SELECT any_value(period_year) FROM s) || ' services, both '
            || (SELECT string_agg(DISTINCT reporter || CASE WHEN includes_uk THEN ' incl. UK' ELSE '' END, ', '
                       ORDER BY reporter || CASE WHEN includes_uk THEN ' incl. UK' ELSE '' END)
                FROM best)
            || CASE WHEN (SELECT any_value(period_year) FROM g) <> (SELECT any_value(period_year) FROM s)
                    THEN ': the claimed pair combines figures of two different years' ELSE '' END
            || CASE WHEN (SELECT any_value(is_fact) FROM s) = 0
                    THEN printf('; the services figure is the vintage published by %s', (SELECT any_value(origin) FROM s))
                         -- printf of a NULL is NULL: a vintage the warehouse has no figure for says so
                         || coalesce(printf(', since revised to €%.1fbn in the warehouse',
                                            (SELECT any_value(fact_value) FROM s) / 1000),
                                     ' (the warehouse holds no figure of that year and aggregate)') ELSE '' END
            || CASE WHEN (SELECT any_value(is_fact) FROM g) = 0
                    THEN printf('; the goods figure is the vintage published by %s', (SELECT any_value(origin) FROM g))
                    ELSE '' END
            || '. Out of date: latest in the warehouse: ' || d.latest_text || '.'
            || CASE WHEN NOT EXISTS (SELECT 1 FROM candidates WHERE is_fact = 1 AND trade_type = 'goods'
                                     AND reporter = 'EU27_2020')
                    THEN ' No goods exports of the post-Brexit EU (EU27_2020) are in the warehouse.' ELSE '' END
        ELSE d.goods_text || '; ' || d.services_text || '. Latest in the warehouse: '
            || coalesce(d.latest_text, 'none') || '.'
    END || coalesce(' The figures used and other published vintages of them disagree: '
                    || (SELECT text FROM disagreements) || '.', '') AS verdict_detail,
    'fact_goods_trade, fact_services_trade, ref_published_trade_figures, dim_eu_aggregate_member'
        AS evidence_tables
FROM texts AS d, available AS a
