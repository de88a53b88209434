-- mart_partnership_timeline: EU–Japan security and defence co-operation events by year and type.
--
-- Grain: one row per (period_year, event_type), from fact_security_events (a curated file: one source URL
-- per event; absence of an event is not evidence it did not happen).
-- events_with_eu: the EU itself is a party. member_states: parties (ISO3 in the file) that were EU members on
-- the event date (dim_country), as ISO2; the UK after 2020-01-31 is not one.
-- event_category: export_control events (China's export controls, mostly) are context, not co-operation.
-- Dates of month- or year-precision events are the first day of that period (fact_security_events).
WITH events AS (
    SELECT e.*, year(e.event_date)::INTEGER AS period_year,
           list_transform(string_split(e.parties, ';'), x -> trim(x)) AS party_list
    FROM fact_security_events AS e
),
party_rows AS (
    SELECT event_id, event_date, unnest(party_list) AS party FROM events
),
members AS (
    SELECT p.event_id, c.iso2
    FROM party_rows AS p
    JOIN dim_country AS c ON c.iso3 = p.party
    WHERE c.eu_entry_date <= p.event_date AND (c.eu_exit_date IS NULL OR c.eu_exit_date >= p.event_date)
),
per_event AS (
    SELECT e.event_id, e.period_year, e.event_type, e.event_date, e.title,
           list_contains(e.party_list, 'EU') AS with_eu,
           coalesce(list_sort(list(DISTINCT m.iso2) FILTER (WHERE m.iso2 IS NOT NULL)), []) AS member_states
    FROM events AS e
    LEFT JOIN members AS m USING (event_id)
    GROUP BY e.event_id, e.period_year, e.event_type, e.event_date, e.title, e.party_list
)
SELECT
    period_year,
    event_type,
    CASE WHEN event_type = 'export_control' THEN 'export control (context)' ELSE 'co-operation' END
        AS event_category,
    count(*)::INTEGER AS events,
    count_if(with_eu)::INTEGER AS events_with_eu,
    count_if(len(member_states) > 0)::INTEGER AS events_with_member_states,
    nullif(array_to_string(list_sort(list_distinct(flatten(list(member_states)))), '; '), '') AS member_states,
    min(event_date) AS first_event_date,
    max(event_date) AS last_event_date,
    string_agg(title, ' | ' ORDER BY event_date, title) AS titles
FROM per_event
GROUP BY period_year, event_type
ORDER BY period_year, event_type
