-- One row per critical raw material of the EU CRM Act (ref_critical_raw_materials), with the slug of its page,
-- its HS codes, and what the warehouse holds on it: EU-Japan trade (mart_crm_trade) and export restrictions
-- (mart_export_restrictions).
select
    m.material,
    regexp_replace(lower(m.material), '[^a-z0-9]+', '-', 'g') as slug,
    max(m.strategic_status) as strategic_status,
    string_agg(m.hs_code, '; ' order by m.hs_code) as hs_codes,
    count(*) as hs_code_count,
    (select count(*) from mart_crm_trade t where t.material = m.material) as trade_rows,
    (select coalesce(sum(r.measures), 0) from mart_export_restrictions r where r.material = m.material) as restriction_measures
from ref_critical_raw_materials m
group by m.material
order by m.material
