-- Export restrictions on each critical raw material (OECD inventory), by restricting country, measure and year.
-- A material without any keeps one row with nulls: Evidence cannot serve a source without rows.
select
    regexp_replace(lower(m.material), '[^a-z0-9]+', '-', 'g') as slug,
    r.country_name,
    r.country_iso3,
    r.policy_type_label,
    r.period_year,
    r.measures,
    r.temporary_measures,
    r.hs6_codes,
    r.commodity_labels,
    r.earliest_introduced
from (select distinct material from ref_critical_raw_materials) m
left join mart_export_restrictions r on r.material = m.material
order by slug, r.country_name, r.period_year
