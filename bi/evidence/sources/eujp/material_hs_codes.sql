-- The HS codes each critical raw material is matched on, with how sure the match is.
select
    regexp_replace(lower(material), '[^a-z0-9]+', '-', 'g') as slug,
    hs_code,
    hs_description,
    hs_confidence,
    source_url
from ref_critical_raw_materials
order by slug, hs_code
