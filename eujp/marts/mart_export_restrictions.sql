-- mart_export_restrictions: export restrictions on critical raw materials by country, material, measure type
-- and year.
--
-- Grain: one row per (country_iso3, material, policy_type, period_year), from fact_export_restrictions.
-- material: the critical raw material whose HS code (ref_critical_raw_materials.hs_prefix) starts the
-- measure's HS6 code; measures on commodities that are not critical raw materials are kept, grouped under
-- material = null. A measure on an HS6 code shared by several materials counts under each material.
-- measures counts fact rows (one per commodity, type and policy variation). A record of policy type
-- NO_RESTRICTION (the inventory's statement that a country restricts nothing on a commodity) is no measure:
-- left out here, in mart_export_restrictions_index and in the claims.
-- Caveat: the bundled OECD file is an excerpt (4 measures, 2024, three countries): see data/README.md.
WITH measures AS (
    SELECT DISTINCT f.ref_area_iso3, f.commodity_hs6, f.commodity_label, f.policy_type, f.policy_type_label,
           f.policy_variation, f.period_year, f.is_temporary, f.date_introduced, r.material,
           r.strategic_status
    FROM fact_export_restrictions AS f
    LEFT JOIN ref_critical_raw_materials AS r
      ON r.is_critical AND starts_with(f.commodity_hs6, r.hs_prefix)
    WHERE f.policy_type IS DISTINCT FROM 'NO_RESTRICTION'
)
SELECT
    m.ref_area_iso3 AS country_iso3,
    any_value(c.name) AS country_name,
    m.material,
    m.material IS NOT NULL AS is_critical_raw_material,
    max(m.strategic_status) AS strategic_status,
    m.policy_type,
    max(m.policy_type_label) AS policy_type_label,
    m.period_year,
    count(*)::INTEGER AS measures,
    count(*) FILTER (WHERE m.is_temporary)::INTEGER AS temporary_measures,
    string_agg(DISTINCT m.commodity_hs6, '; ' ORDER BY m.commodity_hs6) AS hs6_codes,
    string_agg(DISTINCT m.commodity_label, ' | ' ORDER BY m.commodity_label) AS commodity_labels,
    min(m.date_introduced) AS earliest_introduced
FROM measures AS m
LEFT JOIN dim_country AS c ON c.iso3 = m.ref_area_iso3
GROUP BY m.ref_area_iso3, m.material, m.policy_type, m.period_year
ORDER BY m.period_year, m.ref_area_iso3, m.material NULLS LAST, m.policy_type
