-- Claim 4: the EU–Japan trade agreement of 2019 (the Economic Partnership Agreement, EPA).
--
-- Method: EU–Japan events (parties include EU and JPN) whose title names the EPA or the Economic
-- Partnership Agreement, in fact_security_events (a curated, sourced file). Supported if the EPA's entry
-- into force (title says 'force') is dated in 2019; contradicted if it is dated in another year; not enough
-- data if no entry into force is recorded.
WITH epa AS (
    SELECT * FROM fact_security_events
    WHERE list_contains(string_split(parties, ';'), 'EU') AND list_contains(string_split(parties, ';'), 'JPN')
      AND (title ILIKE '%EPA%' OR title ILIKE '%Economic Partnership Agreement%')
),
in_force AS (
    SELECT min(event_date) AS d, count(*) AS n FROM epa WHERE title ILIKE '%force%'
)
SELECT
    'eu_japan_trade_agreement_2019' AS claim_id,
    4 AS claim_number,
    'The EU–Japan trade agreement (Economic Partnership Agreement) of 2019.' AS claim_text,
    'paraphrased' AS wording,
    'dated event' AS claim_kind,
    coalesce((SELECT string_agg(strftime(event_date, '%Y-%m-%d') || ' ' || title, '; ' ORDER BY event_date) FROM epa),
             'no EPA event') AS warehouse_figure,
    NULL::DOUBLE AS warehouse_value,
    NULL AS unit,
    coalesce(strftime(i.d, '%Y-%m-%d'), '-') || ' (entry into force)' AS period_used,
    'EU–Japan events (fact_security_events)' AS scope_used,
    CASE WHEN i.d IS NULL THEN 'not enough data'
         WHEN year(i.d) = 2019 THEN 'supported'
         ELSE 'contradicted' END AS verdict,
    CASE WHEN i.d IS NULL THEN 'No entry into force of the EPA is recorded.'
         ELSE printf('The EPA entered into force on %s', strftime(i.d, '%-d %B %Y'))
              || coalesce((SELECT printf(' (signed %s)', strftime(min(event_date), '%-d %B %Y')) FROM epa
                           WHERE title ILIKE '%signed%' HAVING count(*) > 0), '')
              || CASE WHEN year(i.d) = 2019 THEN '; "of 2019" refers to its entry into force.'
                      ELSE '; not in 2019.' END
    END AS verdict_detail,
    'fact_security_events' AS evidence_tables
FROM in_force AS i
