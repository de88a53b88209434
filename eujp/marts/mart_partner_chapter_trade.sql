-- mart_partner_chapter_trade: the EU's trade with each partner country loaded, by HS chapter (2 digits), year
-- and flow, over Japan's months, ranked against Japan: the table to compare partners in
-- (EUJP_COMEXT_PARTNERS=JP,CN,KR,US, or an all-partner extract).
--
-- Grain: one row per (reporter, partner, flow, period_year, hs2), from the Comext figures in
-- fact_goods_trade_product, for every partner that is a country in dim_country and not a member of EU27_2020
-- (an EU reporter's trade with a member state is no partner to compare with Japan). EU27_2020 is Comext's
-- fixed composition: the 27 members from 2020-02-01, in every period, as its EXT_EU27_2020 aggregate counts
-- (the United Kingdom is a partner before 2020 too, Croatia is none before 2013). Comext codes Serbia XS
-- (geonomenclature; ISO RS, as dim_country); its pseudo-partners QV, QW, ..., Kosovo (XK, not in dim_country)
-- and aggregates such as EXT_EU27_2020 are not ranked. Japan's own rows are
-- here too: with Japan alone loaded (the default) the mart holds Japan's chapters, each ranked 1 of 1.
-- Months compared: the months of Japan's figures for the reporter, flow and year (any product: the months
-- loaded, not those in which Japan traded a product; an annual figure of Japan's covers the whole year); every
-- partner is summed over those, so a partner loaded for other months (a partner added later, whose backfill
-- covers other months) is compared on the same months as Japan. Over a whole year a partner's annual figure
-- (period_code YYYY), where loaded, is used instead of its months, as mart_product_trade does for Japan; over
-- part of a year it is left out (it cannot be cut to Japan's months) and the partner's months are summed.
-- IMPORTANT: months_compared < 12 means a partial year. Ranks and shares compare only the partners LOADED.
-- partner_months < months_compared: the partner has figures for fewer of Japan's months (added later, a
-- shorter extract): its value covers only those, and compares low; the rank does not correct for it.
-- Japan's rows are summed from mart_product_trade, so they equal mart_chapter_trade's, value for value.
WITH japan_periods AS (  -- Japan's period codes for each reporter, flow and year (any product)
    SELECT reporter, flow, year(period)::INTEGER AS period_year, period_code
    FROM fact_goods_trade_product
    WHERE partner = 'JP'
    GROUP BY reporter, flow, year(period), period_code
),
japan_months AS (  -- an annual figure of Japan's covers the whole year
    SELECT reporter, flow, period_year,
           CASE WHEN bool_or(length(period_code) = 4) THEN 12 ELSE count(*) END::INTEGER AS months_compared,
           CASE WHEN bool_or(length(period_code) = 4) THEN period_year || '-01' ELSE min(period_code) END AS first_month,
           CASE WHEN bool_or(length(period_code) = 4) THEN period_year || '-12' ELSE max(period_code) END AS last_month
    FROM japan_periods
    GROUP BY reporter, flow, period_year
),
partner_products AS (
    -- The other partners' figure for each product and year over Japan's months: where those are the whole
    -- year, the partner's annual figure if it has one, else the sum of its months; otherwise the sum of its
    -- months among Japan's (an annual figure cannot be cut to them). mart_product_trade's loaded_partners is
    -- the same rule, written again there (a model's SQL is one query). The sums in one pass per product, not
    -- a join of every row with the annual keys; then per chapter: the product count without a DISTINCT.
    SELECT f.reporter, f.flow, m.period_year, f.partner, f.product_cn8,
           CASE WHEN bool_or(length(f.period_code) = 4) THEN sum(f.value_eur) FILTER (length(f.period_code) = 4)
                ELSE sum(f.value_eur) END AS value_eur,
           CASE WHEN bool_or(length(f.period_code) = 4) THEN sum(f.quantity_kg) FILTER (length(f.period_code) = 4)
                ELSE sum(f.quantity_kg) END AS quantity_kg
    FROM fact_goods_trade_product AS f
    JOIN japan_months AS m ON m.reporter = f.reporter AND m.flow = f.flow AND m.period_year = year(f.period)
    LEFT JOIN japan_periods AS j
      ON j.reporter = f.reporter AND j.flow = f.flow AND j.period_year = m.period_year AND j.period_code = f.period_code
    JOIN dim_country AS c ON c.iso2 = if(f.partner = 'XS', 'RS', f.partner)  -- Comext's code for Serbia
    WHERE f.partner <> 'JP'
      -- over a whole year every row; else the months among Japan's (an annual code is none of them)
      AND (m.months_compared = 12 OR j.period_code IS NOT NULL)
      -- not a member of EU27_2020 (its composition from 2020-02-01, in every period: as EXT_EU27_2020 counts)
      AND NOT (c.eu_entry_date IS NOT NULL AND c.eu_entry_date <= DATE '2020-02-01'
               AND (c.eu_exit_date IS NULL OR c.eu_exit_date >= DATE '2020-02-01'))
    GROUP BY f.reporter, f.flow, m.period_year, f.partner, f.product_cn8
),
partner_months AS (
    -- How many of Japan's months each other partner has any figure loaded for (any product; an annual figure
    -- covers a whole year compared): a partner added later, or a shorter file, is compared on fewer of them.
    SELECT f.reporter, f.flow, m.period_year, f.partner,
           CASE WHEN m.months_compared = 12 AND bool_or(length(f.period_code) = 4) THEN 12
                ELSE count(DISTINCT f.period_code) FILTER (length(f.period_code) = 7) END::INTEGER AS months
    FROM fact_goods_trade_product AS f
    JOIN japan_months AS m ON m.reporter = f.reporter AND m.flow = f.flow AND m.period_year = year(f.period)
    LEFT JOIN japan_periods AS j
      ON j.reporter = f.reporter AND j.flow = f.flow AND j.period_year = m.period_year AND j.period_code = f.period_code
    JOIN dim_country AS c ON c.iso2 = if(f.partner = 'XS', 'RS', f.partner)  -- the partners partner_products sums
    WHERE f.partner <> 'JP' AND (m.months_compared = 12 OR j.period_code IS NOT NULL)
      AND NOT (c.eu_entry_date IS NOT NULL AND c.eu_entry_date <= DATE '2020-02-01'
               AND (c.eu_exit_date IS NULL OR c.eu_exit_date >= DATE '2020-02-01'))
    GROUP BY f.reporter, f.flow, m.period_year, f.partner, m.months_compared
),
partner_chapters AS (
    SELECT reporter, flow, period_year, left(product_cn8, 2) AS hs2, partner, count(*)::INTEGER AS products,
           sum(value_eur) AS value_eur, sum(quantity_kg) AS quantity_kg
    FROM partner_products
    GROUP BY reporter, flow, period_year, left(product_cn8, 2), partner
    UNION ALL
    -- Japan's chapters from its products, already summed the same way (every Japan row is in Japan's months):
    -- a year of 500k fact rows of Japan alone 0.046 s, against 0.11 s summing Japan's facts again
    SELECT reporter, flow, period_year, hs2, partner, count(*)::INTEGER, sum(value_eur), sum(quantity_kg)
    FROM mart_product_trade
    WHERE hs2 IS NOT NULL
    GROUP BY reporter, flow, period_year, hs2, partner
)
SELECT
    p.reporter,
    p.partner,
    c.name AS partner_name,
    p.flow,
    p.period_year,
    p.hs2,
    p.products,
    m.months_compared,
    CASE WHEN p.partner = 'JP' THEN m.months_compared ELSE coalesce(pm.months, 0) END AS partner_months,
    m.first_month,
    m.last_month,
    p.value_eur,
    p.quantity_kg,
    rank() OVER (PARTITION BY p.reporter, p.flow, p.period_year, p.hs2 ORDER BY p.value_eur DESC NULLS LAST)::INTEGER
        AS rank_among_loaded_partners,
    count(*) OVER chapter::INTEGER AS partners_ranked,
    p.value_eur / nullif(sum(p.value_eur) OVER chapter, 0) AS share_of_loaded_partners,
    max(CASE WHEN p.partner = 'JP' THEN p.value_eur END) OVER chapter AS japan_value_eur,
    p.value_eur / nullif(max(CASE WHEN p.partner = 'JP' THEN p.value_eur END) OVER chapter, 0) AS value_to_japan
FROM partner_chapters AS p
JOIN japan_months AS m USING (reporter, flow, period_year)
LEFT JOIN partner_months AS pm USING (reporter, flow, period_year, partner)
JOIN dim_country AS c ON c.iso2 = if(p.partner = 'XS', 'RS', p.partner)
WINDOW chapter AS (PARTITION BY p.reporter, p.flow, p.period_year, p.hs2)
ORDER BY p.reporter, p.flow, p.period_year, p.hs2, rank_among_loaded_partners, p.partner
