-- mart_chapter_trade: EU–Japan trade by HS chapter (2 digits), year and flow.
--
-- Grain: one row per (reporter, partner = 'JP', flow, period_year, hs2), summed from mart_product_trade,
-- so its partial-year caveat applies: months_covered is the largest months_covered among the chapter's
-- products (products may cover different months). Ranks and shares compare only the chapters LOADED, not
-- all goods.
SELECT
    reporter,
    partner,
    flow,
    period_year,
    hs2,
    count(*)::INTEGER AS products,
    count_if(is_critical_raw_material)::INTEGER AS crm_products,
    max(months_covered)::INTEGER AS months_covered,
    min(first_month) AS first_month,
    max(last_month) AS last_month,
    sum(value_eur) AS value_eur,
    sum(quantity_kg) AS quantity_kg,
    rank() OVER (PARTITION BY reporter, partner, flow, period_year ORDER BY sum(value_eur) DESC NULLS LAST)::INTEGER
        AS rank_in_flow,
    sum(value_eur) / nullif(sum(sum(value_eur)) OVER (PARTITION BY reporter, partner, flow, period_year), 0)
        AS share_of_loaded_chapters
FROM mart_product_trade
WHERE hs2 IS NOT NULL
GROUP BY reporter, partner, flow, period_year, hs2
ORDER BY reporter, flow, period_year, rank_in_flow, hs2
