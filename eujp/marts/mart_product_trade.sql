-- mart_product_trade: EU–Japan trade by CN8 product, year and flow, with Japan's place among the EU's
-- suppliers/customers of the product where the data allow it.
--
-- Grain: one row per (reporter, partner = 'JP', flow, period_year, product_cn8), from the Comext figures in
-- fact_goods_trade_product. Monthly figures are summed over the months loaded (months_covered); an annual
-- figure (period_code YYYY), where loaded, is used instead of that year's months (months_covered = 12).
-- IMPORTANT: months_covered < 12 means a partial year (the bundled data: DE 2025-01..03, EU27_2020 2025-06).
-- rank_in_flow and share_of_loaded_products compare only the products LOADED, not all goods.
-- Extra-EU comparison: for the months in which the reporter's extract for the product also holds the
-- EXT_EU27_2020 aggregate (an all-partner extract), japan_share_of_extra_eu = Japan / EXT_EU27_2020 and
-- japan_rank_among_extra_eu ranks Japan among the partner countries that are not members of EU27_2020, the
-- fixed composition EXT_EU27_2020 leaves out in every period (the United Kingdom is extra-EU before 2020 too,
-- Croatia is intra-EU before 2013). Comext codes Serbia XS (geonomenclature; ISO RS in dim_country); its
-- pseudo-partners (QV, QW, ...) and Kosovo (XK), not in dim_country, are not ranked. Without an all-partner
-- extract these columns are null. (The geonomenclature, Commission Implementing Regulation (EU) 2020/1470,
-- follows ISO 3166 alpha-2 but for XK Kosovo, XS Serbia, XC Ceuta and XL Melilla: Finnish Customs' list of
-- countries, https://tulli.fi/sv/statistik/forteckning-over-landerna-och-landergrupperna.)
-- Partners loaded to compare (EUJP_COMEXT_PARTNERS=JP,CN,KR,US, without the aggregate): Japan's rank among the
-- partner countries loaded for the reporter, flow and product, over Japan's months (those loaded for Japan for
-- the reporter, flow and year; an annual figure covers the year), that are not members of EU27_2020 (as above)
-- (japan_rank_among_loaded_partners); null when Japan is the only one loaded (loaded_partners below).
-- loaded_partners_fewer_months counts the partners ranked that have figures for fewer of Japan's months (a
-- partner added later, a shorter extract): their sums cover only those, so Japan ranks above them too easily.
-- Performance (10M Comext rows a year, see benchmarks/): the annual keys are joined, not probed per row with a
-- correlated NOT EXISTS; and count(*) counts the months of a group because period_code is part of the fact's
-- natural key (unique: the audit checks it), so a group's rows have distinct period codes.
WITH annual_keys AS (
    SELECT DISTINCT reporter, partner, product_cn8, flow, year(period) AS period_year
    FROM fact_goods_trade_product
    WHERE length(period_code) = 4
),
rows_used AS (
    -- an annual figure replaces the monthly figures of the same key and year
    SELECT f.*, year(f.period)::INTEGER AS period_year, length(f.period_code) = 4 AS is_annual
    FROM fact_goods_trade_product AS f
    LEFT JOIN annual_keys AS a
      ON a.reporter = f.reporter AND a.partner = f.partner AND a.product_cn8 = f.product_cn8
     AND a.flow = f.flow AND a.period_year = year(f.period)
    WHERE length(f.period_code) = 4 OR a.reporter IS NULL
),
japan AS (
    SELECT reporter, partner, flow, period_year, product_cn8,
           CASE WHEN bool_or(is_annual) THEN 12 ELSE count(*) END::INTEGER AS months_covered,
           CASE WHEN bool_or(is_annual) THEN period_year || '-01' ELSE min(period_code) END AS first_month,
           CASE WHEN bool_or(is_annual) THEN period_year || '-12' ELSE max(period_code) END AS last_month,
           sum(value_eur) AS value_eur,
           sum(quantity_kg) AS quantity_kg
    FROM rows_used
    WHERE partner = 'JP'
    GROUP BY reporter, partner, flow, period_year, product_cn8
),
all_partner_periods AS (
    SELECT reporter, flow, product_cn8, period_year, period_code, is_annual, value_eur AS extra_eu_value
    FROM rows_used
    WHERE partner = 'EXT_EU27_2020'
),
extra_eu AS (
    SELECT reporter, flow, product_cn8, period_year,
           CASE WHEN bool_or(is_annual) THEN 12 ELSE count(*) END::INTEGER AS months,
           sum(extra_eu_value) AS value_eur
    FROM all_partner_periods
    GROUP BY reporter, flow, product_cn8, period_year
),
extra_eu_partners AS (
    -- Each partner country's figure over the aggregate's months, by the rule loaded_partners (below) follows over
    -- Japan's: where those are the whole year, the partner's annual figure if it has one, else the sum of its
    -- months; otherwise the sum of its months among the aggregate's (an annual figure cannot be cut to them).
    -- From the facts, not rows_used: a partner's annual figure there replaced months the aggregate may have.
    -- extra_eu first: DuckDB then hashes the aggregate's keys (few, or none without an all-partner extract)
    -- and probes the year's rows with them.
    SELECT f.reporter, f.flow, f.product_cn8, x.period_year, f.partner,
           CASE WHEN x.months = 12 AND bool_or(length(f.period_code) = 4)
                THEN sum(f.value_eur) FILTER (length(f.period_code) = 4)
                ELSE sum(f.value_eur) FILTER (length(f.period_code) = 7) END AS value_eur
    FROM fact_goods_trade_product AS f
    JOIN extra_eu AS x
      ON x.reporter = f.reporter AND x.flow = f.flow AND x.product_cn8 = f.product_cn8
     AND x.period_year = year(f.period)
    LEFT JOIN all_partner_periods AS p
      ON p.reporter = f.reporter AND p.flow = f.flow AND p.product_cn8 = f.product_cn8
     AND p.period_year = x.period_year AND p.period_code = f.period_code
    JOIN dim_country AS c ON c.iso2 = if(f.partner = 'XS', 'RS', f.partner)  -- Comext's code for Serbia
    WHERE (x.months = 12 OR p.period_code IS NOT NULL)
      -- not a member of EU27_2020 (its composition from 2020-02-01, in every period: as EXT_EU27_2020 counts)
      AND NOT (c.eu_entry_date IS NOT NULL AND c.eu_entry_date <= DATE '2020-02-01'
               AND (c.eu_exit_date IS NULL OR c.eu_exit_date >= DATE '2020-02-01'))
    GROUP BY f.reporter, f.flow, f.product_cn8, x.period_year, f.partner, x.months
),
ranked AS (
    SELECT *,
           rank() OVER (PARTITION BY reporter, flow, product_cn8, period_year ORDER BY value_eur DESC) AS partner_rank,
           count(*) OVER (PARTITION BY reporter, flow, product_cn8, period_year) AS partners_ranked
    FROM extra_eu_partners
),
japan_periods AS (  -- Japan's period codes for each reporter, flow and year (any product)
    SELECT reporter, flow, year(period)::INTEGER AS period_year, period_code
    FROM fact_goods_trade_product
    WHERE partner = 'JP'
    GROUP BY reporter, flow, year(period), period_code
),
japan_months AS (  -- an annual figure of Japan's covers the whole year
    SELECT reporter, flow, period_year,
           CASE WHEN bool_or(length(period_code) = 4) THEN 12 ELSE count(*) END AS months
    FROM japan_periods
    GROUP BY reporter, flow, period_year
),
loaded_partners AS (
    -- The other partner countries' figure for each of Japan's products over Japan's months (those loaded for
    -- the reporter, flow and year, not only those in which Japan traded the product): where those are the
    -- whole year, the partner's annual figure if it has one, else the sum of its months; otherwise the sum of
    -- its months among Japan's (an annual figure cannot be cut to them). mart_partner_chapter_trade's
    -- partner_products is the same rule, written again there (a model's SQL is one query). `partner <> 'JP'`
    -- first, so that a warehouse of Japan alone (the default) probes nothing. The country filter is written
    -- again rather than shared with extra_eu_partners through a CTE of every country row: that CTE took the
    -- whole query on 5M fact rows from 3.3 s to 3.75 s (this mart without these two columns: 2.75 s).
    SELECT f.reporter, f.flow, f.product_cn8, m.period_year, f.partner,
           CASE WHEN bool_or(length(f.period_code) = 4) THEN sum(f.value_eur) FILTER (length(f.period_code) = 4)
                ELSE sum(f.value_eur) END AS value_eur
    FROM fact_goods_trade_product AS f
    JOIN japan_months AS m ON m.reporter = f.reporter AND m.flow = f.flow AND m.period_year = year(f.period)
    LEFT JOIN japan_periods AS j
      ON j.reporter = f.reporter AND j.flow = f.flow AND j.period_year = m.period_year AND j.period_code = f.period_code
    JOIN dim_country AS c ON c.iso2 = if(f.partner = 'XS', 'RS', f.partner)  -- Comext's code for Serbia
    WHERE f.partner <> 'JP'
      -- over a whole year every row; else the months among Japan's (an annual code is none of them)
      AND (m.months = 12 OR j.period_code IS NOT NULL)
      -- not a member of EU27_2020 (its composition from 2020-02-01, in every period: as EXT_EU27_2020 counts)
      AND NOT (c.eu_entry_date IS NOT NULL AND c.eu_entry_date <= DATE '2020-02-01'
               AND (c.eu_exit_date IS NULL OR c.eu_exit_date >= DATE '2020-02-01'))
    GROUP BY f.reporter, f.flow, f.product_cn8, m.period_year, f.partner
),
loaded_partner_months AS (
    -- How many of Japan's months each other partner has any figure loaded for (any product; an annual figure
    -- covers a whole year): mart_partner_chapter_trade's partner_months, written again (one query a model). A
    -- partner loaded for fewer (added later, a shorter extract) sums fewer months than Japan and ranks low.
    SELECT f.reporter, f.flow, m.period_year, f.partner,
           CASE WHEN m.months = 12 AND bool_or(length(f.period_code) = 4) THEN 12
                ELSE count(DISTINCT f.period_code) FILTER (length(f.period_code) = 7) END < m.months AS fewer_months
    FROM fact_goods_trade_product AS f
    JOIN japan_months AS m ON m.reporter = f.reporter AND m.flow = f.flow AND m.period_year = year(f.period)
    LEFT JOIN japan_periods AS j
      ON j.reporter = f.reporter AND j.flow = f.flow AND j.period_year = m.period_year AND j.period_code = f.period_code
    WHERE f.partner <> 'JP' AND (m.months = 12 OR j.period_code IS NOT NULL)
    GROUP BY f.reporter, f.flow, m.period_year, f.partner, m.months
),
loaded_ranked AS (
    SELECT *,
           rank() OVER (PARTITION BY reporter, flow, product_cn8, period_year ORDER BY value_eur DESC NULLS LAST)
               AS partner_rank,
           count(*) OVER (PARTITION BY reporter, flow, product_cn8, period_year) AS partners_ranked,
           sum(fewer_months::INTEGER) OVER (PARTITION BY reporter, flow, product_cn8, period_year)
               AS partners_fewer_months
    FROM (SELECT l.*, coalesce(pm.fewer_months, false) AS fewer_months
          FROM loaded_partners AS l LEFT JOIN loaded_partner_months AS pm USING (reporter, flow, period_year, partner)
          UNION ALL
          SELECT reporter, flow, product_cn8, period_year, partner, value_eur, false
          FROM japan SEMI JOIN loaded_partners USING (reporter, flow, product_cn8, period_year))
)
SELECT
    j.reporter,
    j.partner,
    j.flow,
    j.period_year,
    j.product_cn8,
    d.hs6,
    d.hs2,
    j.months_covered,
    j.first_month,
    j.last_month,
    j.value_eur,
    j.quantity_kg,
    rank() OVER (PARTITION BY j.reporter, j.partner, j.flow, j.period_year ORDER BY j.value_eur DESC NULLS LAST)::INTEGER
        AS rank_in_flow,
    j.value_eur / nullif(sum(j.value_eur) OVER (PARTITION BY j.reporter, j.partner, j.flow, j.period_year), 0)
        AS share_of_loaded_products,
    coalesce(d.is_critical_raw_material, false) AS is_critical_raw_material,
    d.crm_materials,
    coalesce(x.months, 0)::INTEGER AS months_with_all_partners,
    x.value_eur AS extra_eu_value_eur,
    r.value_eur / nullif(x.value_eur, 0) AS japan_share_of_extra_eu,
    r.partner_rank::INTEGER AS japan_rank_among_extra_eu,
    r.partners_ranked::INTEGER AS extra_eu_partners_ranked,
    l.partner_rank::INTEGER AS japan_rank_among_loaded_partners,
    l.partners_ranked::INTEGER AS loaded_partners_ranked,
    l.partners_fewer_months::INTEGER AS loaded_partners_fewer_months
FROM japan AS j
LEFT JOIN dim_product AS d ON d.product_level = 'CN8' AND d.product_code = j.product_cn8
LEFT JOIN extra_eu AS x USING (reporter, flow, product_cn8, period_year)
LEFT JOIN ranked AS r
  ON r.reporter = j.reporter AND r.flow = j.flow AND r.product_cn8 = j.product_cn8
 AND r.period_year = j.period_year AND r.partner = 'JP'
LEFT JOIN loaded_ranked AS l
  ON l.reporter = j.reporter AND l.flow = j.flow AND l.product_cn8 = j.product_cn8
 AND l.period_year = j.period_year AND l.partner = 'JP'
ORDER BY j.reporter, j.flow, j.period_year, rank_in_flow, j.product_cn8
