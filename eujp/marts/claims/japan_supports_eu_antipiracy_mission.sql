-- Claim 8: Japan supports the EU's anti-piracy mission (EU NAVFOR Operation Atalanta).
--
-- Method: operations and exercises in fact_security_events with the EU and Japan as parties whose title or
-- description mentions piracy or Atalanta. Supported if at least one is recorded; not enough data otherwise.
WITH ops AS (
    SELECT * FROM fact_security_events
    WHERE event_type IN ('operation', 'exercise')
      AND list_contains(string_split(parties, ';'), 'EU') AND list_contains(string_split(parties, ';'), 'JPN')
      AND (title || ' ' || coalesce(description, '')) SIMILAR TO '.*([Pp]iracy|Atalanta|ATALANTA).*'
)
SELECT
    'japan_supports_eu_antipiracy_mission' AS claim_id,
    8 AS claim_number,
    'Japan supports the EU''s anti-piracy mission (EU NAVFOR Atalanta).' AS claim_text,
    'paraphrased' AS wording,
    'dated events' AS claim_kind,
    coalesce((SELECT string_agg(strftime(event_date, '%Y-%m-%d') || ' ' || title, '; ' ORDER BY event_date) FROM ops),
             'no such event') AS warehouse_figure,
    (SELECT count(*) FROM ops)::DOUBLE AS warehouse_value,
    'events' AS unit,
    coalesce((SELECT strftime(min(event_date), '%Y') || '-' || strftime(max(event_date), '%Y') FROM ops
              HAVING count(*) > 0), '-') AS period_used,
    'EU–Japan operations and exercises (fact_security_events)' AS scope_used,
    CASE WHEN (SELECT count(*) FROM ops) > 0 THEN 'supported' ELSE 'not enough data' END AS verdict,
    CASE WHEN (SELECT count(*) FROM ops) > 0
         THEN printf('%d joint counter-piracy operations and exercises of Japan with the EU''s mission, %s-%s, '
                     'the first: %s.', (SELECT count(*) FROM ops), (SELECT strftime(min(event_date), '%Y') FROM ops),
                     (SELECT strftime(max(event_date), '%Y') FROM ops),
                     (SELECT arg_min(title, event_date) FROM ops))
         ELSE 'No EU–Japan counter-piracy operation or exercise is recorded.' END AS verdict_detail,
    'fact_security_events' AS evidence_tables
