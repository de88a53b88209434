-- dim_date: the calendar, one row per day, with the EU's membership that day.
--
-- Grain: one day. Range: 1 January of the earliest year any fact or reference table uses (at latest 1950)
-- to 31 December of the latest (at least 2035), so every fact date and year has its row.
-- Joins: monthly facts on date_day = fact_goods_trade_product.period; annual facts on year with
-- is_year_start (one row per year); events on date_day = fact_security_events.event_date.
-- eu_member_count counts dim_country members that day (exit date inclusive, as in dim_eu_aggregate_member);
-- eu_aggregate names the aggregate of dim_eu_aggregate_member in force that day, null outside them.
WITH years (y) AS (
    SELECT period_year FROM fact_goods_trade
    UNION ALL SELECT period_year FROM fact_services_trade
    UNION ALL SELECT year(period) FROM fact_goods_trade_product
    UNION ALL SELECT order_year FROM fact_arms_transfers
    UNION ALL SELECT last_delivery_year FROM fact_arms_transfers
    UNION ALL SELECT year(event_date) FROM fact_security_events
    UNION ALL SELECT period_year FROM fact_export_restrictions
    UNION ALL SELECT year(date_introduced) FROM fact_export_restrictions
    UNION ALL SELECT year(date_end) FROM fact_export_restrictions
    UNION ALL SELECT period_year FROM ref_japan_rank
    UNION ALL SELECT period_start FROM ref_export_restrictions_trend
    UNION ALL SELECT period_end FROM ref_export_restrictions_trend
    UNION ALL SELECT period_year FROM ref_published_trade_figures
),
bounds AS (
    SELECT least(1950, min(y)) AS y0, greatest(2035, max(y)) AS y1 FROM years
),
days AS (
    SELECT unnest(generate_series(make_date(y0, 1, 1)::TIMESTAMP, make_date(y1, 12, 31)::TIMESTAMP,
                                  INTERVAL 1 DAY))::DATE AS d
    FROM bounds
),
members AS (
    SELECT d.d, count(c.iso2)::INTEGER AS n
    FROM days AS d
    LEFT JOIN dim_country AS c
      ON c.eu_entry_date <= d.d AND (c.eu_exit_date IS NULL OR c.eu_exit_date >= d.d)
    GROUP BY d.d
),
aggregates AS (
    SELECT DISTINCT aggregate_code, in_force_from, in_force_to FROM dim_eu_aggregate_member
)
SELECT
    m.d AS date_day,
    year(m.d)::INTEGER AS year,
    quarter(m.d)::INTEGER AS quarter,
    month(m.d)::INTEGER AS month,
    strftime(m.d, '%Y-%m') AS month_code,
    day(m.d)::INTEGER AS day_of_month,
    isodow(m.d)::INTEGER AS iso_day_of_week,
    day(m.d) = 1 AS is_month_start,
    day(m.d) = 1 AND month(m.d) = 1 AS is_year_start,
    m.n AS eu_member_count,
    a.aggregate_code AS eu_aggregate
FROM members AS m
LEFT JOIN aggregates AS a
  ON m.d >= a.in_force_from AND (a.in_force_to IS NULL OR m.d <= a.in_force_to)
ORDER BY m.d
