-- mart_partner_years: the partners the Comext product facts hold, by year.
--
-- Grain: one row per (partner, period_year) of fact_goods_trade_product. months_loaded counts the distinct
-- monthly period codes (YYYY-MM) of the partner in the year, over every reporter, flow and product; an annual
-- figure (period code YYYY) is no month, it sets annual_figures. last_run_id / last_loaded_at: the fact row of
-- the partner and year loaded last. eujp.partners sums the years for the report, the manifest and the catalog.
-- Performance: the rows are first grouped by partner and period code, then the few groups by year (the ten
-- years of 5M fact rows: 1.0 s, against 1.6-2.0 s for one GROUP BY with count(DISTINCT) and arg_max over the rows).
WITH months AS (
    SELECT partner, year(period)::INTEGER AS period_year, period_code,
           arg_max(run_id, loaded_at) AS last_run_id, max(loaded_at) AS last_loaded_at
    FROM fact_goods_trade_product
    GROUP BY partner, year(period), period_code
)
SELECT
    partner,
    period_year,
    count(*) FILTER (length(period_code) = 7)::INTEGER AS months_loaded,
    bool_or(length(period_code) = 4) AS annual_figures,
    min(period_code) FILTER (length(period_code) = 7) AS first_month,
    max(period_code) FILTER (length(period_code) = 7) AS last_month,
    arg_max(last_run_id, last_loaded_at) AS last_run_id,
    max(last_loaded_at) AS last_loaded_at
FROM months
GROUP BY partner, period_year
ORDER BY period_year, partner
