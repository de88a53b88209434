-- mart_trade_annual: EU–Japan trade in goods and services by year, with Japan's rank among EU partners.
--
-- Grain: one row per (period_year, reporter, trade_type). reporter is the EU aggregate a figure was
-- published for (EU15, EU27_2007, EU28, EU27_2020): never sum or compare across aggregates; filter on one.
-- trade_type: goods (fact_goods_trade, partner JP), services (fact_services_trade, partner JP, total services
-- bop_item S), goods_and_services (goods + services of the same year and aggregate; a flow is null unless
-- both are published). Rows also exist for years that only have a published rank.
-- balance_mio_eur is the published balance; balance_computed_mio_eur = exports - imports. They differ where a
-- source rounded or contradicted itself (services 2020: published 15000, computed 13000).
-- Year-on-year changes compare with period_year - 1 of the same reporter and trade_type only; a gap in the
-- series (e.g. 2015 goods) gives null, never a change over two years.
-- Ranks: ref_japan_rank statements of the same year, aggregate and scope (= trade_type); where several give
-- a rank, the best is shown and rank_statements counts them. Ranks 'within_Asia' are not overall ranks and
-- are not used here (see mart_claims).
-- Computed ranks (goods rows only): Japan's rank among the EU's main partners (main_partners below, the same
-- set as eujp/sources/eurostat_goods.py MAIN_PARTNERS) by exports, imports and total (exports + imports),
-- from fact_goods_trade of the same year and aggregate: 1 + the number of partners with a larger figure.
-- Completeness rule: a flow's rank is computed only when the warehouse holds that figure for Japan and for
-- every main partner that is not a member of the aggregate (UK counts for EU27_2020 only); otherwise it is
-- null and rank_computed_note names the partners without a figure. Statements stay as cross-checks.
-- Observation flags (*_obs_status): the Eurostat status of each published figure (e.g. 'p' provisional, 'e'
-- estimated), null when unflagged; for goods_and_services the distinct flags of the goods and the services
-- figure it sums ('p': either or both is provisional).
-- Caveat (data/README.md): EU27_2020 goods exports and imports are missing from the bundled data.
WITH goods AS (
    SELECT period_year, reporter, 'goods' AS trade_type,
           max(value_mio_eur) FILTER (WHERE flow = 'export') AS exports,
           max(value_mio_eur) FILTER (WHERE flow = 'import') AS imports,
           max(value_mio_eur) FILTER (WHERE flow = 'balance') AS balance,
           max(obs_status) FILTER (WHERE flow = 'export') AS exports_status,
           max(obs_status) FILTER (WHERE flow = 'import') AS imports_status,
           max(obs_status) FILTER (WHERE flow = 'balance') AS balance_status
    FROM fact_goods_trade
    WHERE partner = 'JP'
    GROUP BY ALL
),
services AS (
    SELECT period_year, reporter, 'services' AS trade_type,
           max(value_mio_eur) FILTER (WHERE flow = 'export') AS exports,
           max(value_mio_eur) FILTER (WHERE flow = 'import') AS imports,
           max(value_mio_eur) FILTER (WHERE flow = 'balance') AS balance,
           max(obs_status) FILTER (WHERE flow = 'export') AS exports_status,
           max(obs_status) FILTER (WHERE flow = 'import') AS imports_status,
           max(obs_status) FILTER (WHERE flow = 'balance') AS balance_status
    FROM fact_services_trade
    WHERE partner = 'JP' AND bop_item = 'S'
    GROUP BY ALL
),
both_types AS (
    SELECT g.period_year, g.reporter, 'goods_and_services' AS trade_type,
           g.exports + s.exports AS exports,
           g.imports + s.imports AS imports,
           g.balance + s.balance AS balance,
           nullif(array_to_string(list_sort(list_distinct([g.exports_status, s.exports_status])), ', '), '')
               AS exports_status,
           nullif(array_to_string(list_sort(list_distinct([g.imports_status, s.imports_status])), ', '), '')
               AS imports_status,
           nullif(array_to_string(list_sort(list_distinct([g.balance_status, s.balance_status])), ', '), '')
               AS balance_status
    FROM goods AS g
    JOIN services AS s USING (period_year, reporter)
),
flows AS (
    SELECT * FROM goods UNION ALL SELECT * FROM services UNION ALL SELECT * FROM both_types
),
main_partners (partner) AS (
    VALUES ('US'), ('CN'), ('UK'), ('CH'), ('RU'), ('TR'), ('NO'), ('KR'), ('IN')
),
partner_flows AS (
    SELECT period_year, reporter, partner, flow, value_mio_eur AS v
    FROM fact_goods_trade
    WHERE flow IN ('export', 'import') AND value_mio_eur IS NOT NULL
    UNION ALL
    SELECT period_year, reporter, partner, 'total',
           max(value_mio_eur) FILTER (WHERE flow = 'export') + max(value_mio_eur) FILTER (WHERE flow = 'import')
    FROM fact_goods_trade
    WHERE flow IN ('export', 'import')
    GROUP BY period_year, reporter, partner
    HAVING count(value_mio_eur) FILTER (WHERE flow = 'export') = 1
       AND count(value_mio_eur) FILTER (WHERE flow = 'import') = 1
),
compared AS (
    SELECT j.period_year, j.reporter, j.flow, m.partner, j.v AS japan_v, p.v
    FROM partner_flows AS j
    JOIN main_partners AS m ON m.partner <> 'UK' OR j.reporter = 'EU27_2020'
    LEFT JOIN partner_flows AS p
           ON p.period_year = j.period_year AND p.reporter = j.reporter AND p.flow = j.flow
          AND p.partner = m.partner
    WHERE j.partner = 'JP'
),
computed_by_flow AS (
    SELECT period_year, reporter, flow,
           CASE WHEN count(v) = count(*) THEN 1 + count(*) FILTER (WHERE v > japan_v) END AS computed_rank,
           CASE WHEN count(v) = count(*)
                THEN printf('%s: %d of %d (Japan and %d main partners)', flow,
                            1 + count(*) FILTER (WHERE v > japan_v), count(*) + 1, count(*))
                ELSE printf('%s: not computable, no figure for %s', flow,
                            string_agg(partner, ', ' ORDER BY partner) FILTER (WHERE v IS NULL)) END AS note
    FROM compared
    GROUP BY period_year, reporter, flow
),
computed AS (
    SELECT period_year, reporter, 'goods' AS trade_type,
           max(computed_rank) FILTER (WHERE flow = 'export') AS computed_exports,
           max(computed_rank) FILTER (WHERE flow = 'import') AS computed_imports,
           max(computed_rank) FILTER (WHERE flow = 'total') AS computed_total,
           string_agg(note, '; ' ORDER BY CASE flow WHEN 'export' THEN 1 WHEN 'import' THEN 2 ELSE 3 END)
               AS computed_note
    FROM computed_by_flow
    GROUP BY period_year, reporter
),
ranks AS (
    SELECT period_year, reporter, scope AS trade_type,
           min(rank_exports) AS rank_exports,
           min(rank_imports) AS rank_imports,
           min(rank_total) AS rank_total,
           count(*) AS statements,
           string_agg(DISTINCT source_url, ' | ' ORDER BY source_url) AS urls
    FROM ref_japan_rank
    WHERE scope IN ('goods', 'services', 'goods_and_services')
      AND (rank_exports IS NOT NULL OR rank_imports IS NOT NULL OR rank_total IS NOT NULL)
    GROUP BY ALL
),
keyed AS (
    SELECT k.period_year, k.reporter, k.trade_type, f.exports, f.imports, f.balance,
           f.exports_status, f.imports_status, f.balance_status,
           r.rank_exports, r.rank_imports, r.rank_total, r.statements, r.urls,
           c.computed_exports, c.computed_imports, c.computed_total, c.computed_note
    FROM (SELECT period_year, reporter, trade_type FROM flows
          UNION SELECT period_year, reporter, trade_type FROM ranks) AS k
    LEFT JOIN flows AS f USING (period_year, reporter, trade_type)
    LEFT JOIN ranks AS r USING (period_year, reporter, trade_type)
    LEFT JOIN computed AS c USING (period_year, reporter, trade_type)
),
with_previous AS (
    SELECT *,
           exports + imports AS total,
           lag(period_year) OVER w AS prev_year,
           lag(exports) OVER w AS prev_exports,
           lag(imports) OVER w AS prev_imports,
           lag(balance) OVER w AS prev_balance,
           lag(exports + imports) OVER w AS prev_total
    FROM keyed
    WINDOW w AS (PARTITION BY reporter, trade_type ORDER BY period_year)
)
SELECT
    period_year,
    reporter,
    trade_type,
    exports AS exports_mio_eur,
    imports AS imports_mio_eur,
    balance AS balance_mio_eur,
    exports - imports AS balance_computed_mio_eur,
    total AS total_trade_mio_eur,
    CASE WHEN prev_year = period_year - 1 AND prev_exports <> 0
         THEN 100.0 * (exports - prev_exports) / prev_exports END AS exports_yoy_pct,
    CASE WHEN prev_year = period_year - 1 AND prev_imports <> 0
         THEN 100.0 * (imports - prev_imports) / prev_imports END AS imports_yoy_pct,
    CASE WHEN prev_year = period_year - 1 THEN balance - prev_balance END AS balance_yoy_mio_eur,
    CASE WHEN prev_year = period_year - 1 AND prev_total <> 0
         THEN 100.0 * (total - prev_total) / prev_total END AS total_trade_yoy_pct,
    rank_exports AS japan_rank_exports,
    rank_imports AS japan_rank_imports,
    rank_total AS japan_rank_total,
    coalesce(statements, 0)::INTEGER AS rank_statements,
    urls AS rank_source_urls,
    computed_exports::INTEGER AS japan_rank_exports_computed,
    computed_imports::INTEGER AS japan_rank_imports_computed,
    computed_total::INTEGER AS japan_rank_total_computed,
    computed_note AS rank_computed_note,
    exports_status AS exports_obs_status,
    imports_status AS imports_obs_status,
    balance_status AS balance_obs_status
FROM with_previous
ORDER BY reporter, trade_type, period_year
