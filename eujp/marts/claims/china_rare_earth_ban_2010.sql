-- Claim 6: China's export ban on rare earths (to Japan) in 2010.
--
-- Method: export-control events of 2010 with China and Japan as parties whose title or description mentions
-- rare earths (fact_security_events). Supported if at least one is recorded; not enough data otherwise (a
-- curated file's silence is no evidence). The detail lists the events: the sources describe a halt of
-- Japan-bound shipments and a temporary restriction rather than a declared ban.
WITH ree AS (
    SELECT * FROM fact_security_events
    WHERE event_type = 'export_control' AND year(event_date) = 2010
      AND list_contains(string_split(parties, ';'), 'CHN') AND list_contains(string_split(parties, ';'), 'JPN')
      AND (title || ' ' || coalesce(description, '')) SIMILAR TO '.*([Rr]are.?[Ee]arth|REE).*'
)
SELECT
    'china_rare_earth_ban_2010' AS claim_id,
    6 AS claim_number,
    'China imposed an export ban on rare earths (to Japan) in 2010.' AS claim_text,
    'paraphrased' AS wording,
    'dated event' AS claim_kind,
    coalesce((SELECT string_agg(strftime(event_date, '%Y-%m-%d') || ' ' || title, '; ' ORDER BY event_date) FROM ree),
             'no such event') AS warehouse_figure,
    (SELECT count(*) FROM ree)::DOUBLE AS warehouse_value,
    'events' AS unit,
    coalesce((SELECT strftime(min(event_date), '%Y-%m-%d') || ' to ' || strftime(max(event_date), '%Y-%m-%d') FROM ree
              HAVING count(*) > 0), '2010') AS period_used,
    'China–Japan export-control events (fact_security_events)' AS scope_used,
    CASE WHEN (SELECT count(*) FROM ree) > 0 THEN 'supported' ELSE 'not enough data' END AS verdict,
    CASE WHEN (SELECT count(*) FROM ree) > 0
         THEN 'Recorded, with nuance from the sources: '
              || (SELECT string_agg(strftime(event_date, '%-d %b %Y') || ': ' || description, ' ' ORDER BY event_date)
                  FROM ree)
         ELSE 'No 2010 China–Japan rare-earth export control is recorded.' END AS verdict_detail,
    'fact_security_events' AS evidence_tables
