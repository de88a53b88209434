-- EU-Japan trade in each critical raw material, by reporter, flow and year (sums over the months loaded).
-- A material without any keeps one row with nulls: Evidence cannot serve a source without rows.
select
    regexp_replace(lower(m.material), '[^a-z0-9]+', '-', 'g') as slug,
    t.reporter,
    t.flow,
    t.period_year,
    t.months_covered,
    t.value_eur,
    t.quantity_kg,
    t.product_codes
from (select distinct material from ref_critical_raw_materials) m
left join mart_crm_trade t on t.material = m.material
order by slug, t.reporter, t.flow, t.period_year
