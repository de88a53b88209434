-- dim_eu_aggregate_member: the member states of each EU aggregate the facts are published for.
--
-- Grain: one row per aggregate and member state (EU15: 15, EU27_2007: 27, EU28: 28, EU27_2020: 27 rows).
-- Membership is read from dim_country on the aggregate's composition date (the first day the EU had that
-- composition): eu_entry_date <= date and (no exit, or eu_exit_date >= date). The exit date is the last day
-- of membership (the United Kingdom left at the end of 2020-01-31, data/README.md).
-- Use: join fact_goods_trade.reporter / fact_services_trade.reporter to aggregate_code to list or count the
-- member states behind a figure, or to tell whether a figure includes the United Kingdom (iso2 = 'GB').
-- Caveat: only the four aggregates the facts use; EU25 (2004-2006) and the EEC/EC of 6-12 are not listed.
WITH aggregates (aggregate_code, aggregate_label, composition_date, in_force_to) AS (
    VALUES
        ('EU15', 'European Union - 15 countries (1995-2004)', DATE '1995-01-01', DATE '2004-04-30'),
        ('EU27_2007', 'European Union - 27 countries (2007-2013)', DATE '2007-01-01', DATE '2013-06-30'),
        ('EU28', 'European Union - 28 countries (2013-2020)', DATE '2013-07-01', DATE '2020-01-31'),
        ('EU27_2020', 'European Union - 27 countries (from 2020)', DATE '2020-02-01', NULL::DATE)
),
members AS (
    SELECT a.aggregate_code, a.aggregate_label, a.composition_date, a.in_force_to, c.iso2, c.iso3, c.name
    FROM aggregates AS a
    JOIN dim_country AS c
      ON c.eu_entry_date <= a.composition_date
     AND (c.eu_exit_date IS NULL OR c.eu_exit_date >= a.composition_date)
)
SELECT
    aggregate_code,
    aggregate_label,
    composition_date,
    composition_date AS in_force_from,
    in_force_to,
    (count(*) OVER (PARTITION BY aggregate_code))::INTEGER AS member_count,
    iso2,
    iso3,
    name AS country_name
FROM members
ORDER BY composition_date, iso2
