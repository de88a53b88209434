-- mart_arms_transfers: arms transfers between Japan and EU member states, by year of order and supplier.
--
-- Grain: one row per (order_year, supplier, recipient) where one side is Japan and the other a country
-- that is or was an EU member (dim_country.eu_entry_date set). Sums over SIPRI orders (fact_arms_transfers).
-- counterpart_eu_member_in_order_year: member at some time in the order year (entry <= 31 Dec and exit, if
-- any, >= 1 Jan), so the UK counts for 1973-2020 and Sweden from 1995; counterpart_in_eu27_2020: one of
-- today's 27 (dim_eu_aggregate_member). Filter on one of them: e.g. France's orders of 1958 are before
-- there was an EU in today's sense, but France was an EEC member.
-- Caveats: the year is the ORDER year; deliveries can span many later years (fact_arms_transfers has the
-- delivery years). TIV is SIPRI's trend-indicator value (millions), a volume measure, not a price.
WITH japan AS (
    SELECT f.*,
           CASE WHEN f.recipient_iso2 = 'JP' THEN 'to_japan' ELSE 'from_japan' END AS direction,
           CASE WHEN f.recipient_iso2 = 'JP' THEN f.supplier_iso2 ELSE f.recipient_iso2 END AS counterpart_iso2
    FROM fact_arms_transfers AS f
    WHERE (f.recipient_iso2 = 'JP' AND f.supplier_iso2 IS DISTINCT FROM 'JP')
       OR (f.supplier_iso2 = 'JP' AND f.recipient_iso2 IS DISTINCT FROM 'JP')
)
SELECT
    j.order_year,
    j.supplier,
    any_value(j.supplier_iso2) AS supplier_iso2,
    j.recipient,
    any_value(j.recipient_iso2) AS recipient_iso2,
    any_value(j.direction) AS direction,
    any_value(j.counterpart_iso2) AS counterpart_iso2,
    any_value(c.name) AS counterpart_name,
    any_value(c.eu_entry_date <= make_date(j.order_year, 12, 31)
              AND (c.eu_exit_date IS NULL OR c.eu_exit_date >= make_date(j.order_year, 1, 1)))
        AS counterpart_eu_member_in_order_year,
    any_value(j.counterpart_iso2 IN (SELECT iso2 FROM dim_eu_aggregate_member WHERE aggregate_code = 'EU27_2020'))
        AS counterpart_in_eu27_2020,
    count(*)::INTEGER AS orders,
    count_if(j.order_year_uncertain)::INTEGER AS orders_year_uncertain,
    sum(j.number_ordered)::BIGINT AS number_ordered,
    sum(j.number_delivered)::BIGINT AS number_delivered,
    sum(j.tiv_total_order) AS tiv_total_order,
    sum(j.tiv_delivered) AS tiv_delivered,
    string_agg(DISTINCT j.weapon_description, '; ' ORDER BY j.weapon_description) AS weapon_descriptions
FROM japan AS j
JOIN dim_country AS c ON c.iso2 = j.counterpart_iso2
WHERE c.eu_entry_date IS NOT NULL
GROUP BY j.order_year, j.supplier, j.recipient
ORDER BY j.order_year, j.supplier, j.recipient
