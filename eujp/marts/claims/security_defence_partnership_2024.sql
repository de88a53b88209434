-- Claim 5: the EU–Japan Security and Defence Partnership was announced in Tokyo on 1 November 2024, the first
-- of its kind with an Asia-Pacific country.
--
-- Method: EU–Japan events titled '...Security and Defence Partnership...' in fact_security_events. Supported
-- if one is dated 2024-11-01 to the day and its title places it in Tokyo; contradicted if the partnership is
-- recorded at another date; not enough data if it is not recorded. "First of its kind" cannot be counted
-- (the warehouse holds no other EU partnerships): the detail quotes the event description, which paraphrases
-- the cited source.
WITH sdp AS (
    SELECT * FROM fact_security_events
    WHERE list_contains(string_split(parties, ';'), 'EU') AND list_contains(string_split(parties, ';'), 'JPN')
      AND title ILIKE '%Security and Defence Partnership%'
),
on_day AS (
    SELECT * FROM sdp WHERE event_date = DATE '2024-11-01' AND date_precision = 'day' AND title ILIKE '%Tokyo%'
)
SELECT
    'security_defence_partnership_2024' AS claim_id,
    5 AS claim_number,
    'The EU–Japan security and defence partnership was announced in Tokyo on 1 November 2024, the first of '
        || 'its kind with an Asia-Pacific country.' AS claim_text,
    'paraphrased' AS wording,
    'dated event' AS claim_kind,
    coalesce((SELECT string_agg(strftime(event_date, '%Y-%m-%d') || ' ' || title || ': ' || description, '; '
                                ORDER BY event_date) FROM sdp), 'no such event') AS warehouse_figure,
    NULL::DOUBLE AS warehouse_value,
    NULL AS unit,
    coalesce((SELECT string_agg(DISTINCT strftime(event_date, '%Y-%m-%d'), ', ' ORDER BY strftime(event_date, '%Y-%m-%d')) FROM sdp), '-') AS period_used,
    'EU–Japan events (fact_security_events)' AS scope_used,
    CASE WHEN (SELECT count(*) FROM on_day) > 0 THEN 'supported'
         WHEN (SELECT count(*) FROM sdp) > 0 THEN 'contradicted'
         ELSE 'not enough data' END AS verdict,
    CASE WHEN (SELECT count(*) FROM on_day) > 0 THEN
             'Recorded on 1 November 2024 in Tokyo ('
             || (SELECT any_value(source_title) FROM on_day) || '). '
             || CASE WHEN (SELECT bool_or(description ILIKE '%first%') FROM on_day)
                     THEN '"First of its kind" rests on the source as paraphrased: "'
                          || (SELECT any_value(description) FROM on_day)
                          || '"; the warehouse holds no other EU partnerships to count.'
                     ELSE 'The warehouse cannot tell whether it was the first of its kind.' END
         WHEN (SELECT count(*) FROM sdp) > 0 THEN 'The partnership is recorded, but not on 1 November 2024 in Tokyo.'
         ELSE 'The partnership is not in fact_security_events.' END AS verdict_detail,
    'fact_security_events' AS evidence_tables
