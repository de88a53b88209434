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
-- Caveat (data/README.md): EU27_2020 goods exports and imports are missing from the bundled data.
WITH goods AS (
    SELECT period_year, reporter, 'goods' AS trade_type,
           max(value_mio_eur) FILTER (WHERE flow = 'export') AS exports,
           max(value_mio_eur) FILTER (WHERE flow = 'import') AS imports,
           max(value_mio_eur) FILTER (WHERE flow = 'balance') AS balance
    FROM fact_goods_trade
    WHERE partner = 'JP'
    GROUP BY ALL
),
services AS (
    SELECT period_year, reporter, 'services' AS trade_type,
           max(value_mio_eur) FILTER (WHERE flow = 'export') AS exports,
           max(value_mio_eur) FILTER (WHERE flow = 'import') AS imports,
           max(value_mio_eur) FILTER (WHERE flow = 'balance') AS balance
    FROM fact_services_trade
    WHERE partner = 'JP' AND bop_item = 'S'
    GROUP BY ALL
),
both_types AS (
    SELECT g.period_year, g.reporter, 'goods_and_services' AS trade_type,
           g.exports + s.exports AS exports,
           g.imports + s.imports AS imports,
           g.balance + s.balance AS balance
    FROM goods AS g
    JOIN services AS s USING (period_year, reporter)
),
flows AS (
    SELECT * FROM goods UNION ALL SELECT * FROM services UNION ALL SELECT * FROM both_types
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
           r.rank_exports, r.rank_imports, r.rank_total, r.statements, r.urls
    FROM (SELECT period_year, reporter, trade_type FROM flows
          UNION SELECT period_year, reporter, trade_type FROM ranks) AS k
    LEFT JOIN flows AS f USING (period_year, reporter, trade_type)
    LEFT JOIN ranks AS r USING (period_year, reporter, trade_type)
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
    urls AS rank_source_urls
FROM with_previous
ORDER BY reporter, trade_type, period_year
