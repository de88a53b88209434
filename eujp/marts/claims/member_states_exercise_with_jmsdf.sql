-- Claim 7: Germany, Italy, France and the Netherlands exercise with the Japan Maritime Self-Defense Force.
--
-- Method: exercise events in fact_security_events with Japan and the member state as parties whose title,
-- description or source title points to the maritime force: JMSDF / Self Defense Fleet, a JS, ITS or HNLMS
-- ship, a navy, naval, frigate, destroyer or carrier, or Operation Atalanta (a text test on a curated file;
-- air exercises with the JASDF and land exercises do not count). Supported if each of the four has at least
-- one; not enough data otherwise (absence from a curated file is not evidence of absence).
WITH states (iso3, name) AS (
    VALUES ('DEU', 'Germany'), ('ITA', 'Italy'), ('FRA', 'France'), ('NLD', 'Netherlands')
),
maritime AS (
    SELECT *, string_split(parties, ';') AS party_list FROM fact_security_events
    WHERE event_type = 'exercise' AND list_contains(string_split(parties, ';'), 'JPN')
      AND regexp_matches(title || ' ' || coalesce(description, '') || ' ' || coalesce(source_title, ''),
                         '(JMSDF|Self.Defen[cs]e Fleet|\bJS [A-Z]|\bITS [A-Z]|HNLMS|[Nn]av(y|al|ies)|[Ff]rigate|'
                         || '[Dd]estroyer|[Cc]arrier|Atalanta)')
),
per_state AS (
    SELECT s.iso3, s.name, count(m.event_id) AS n, min(m.event_date) AS first_date,
           string_agg(strftime(m.event_date, '%Y-%m-%d') || ' ' || m.title, '; ' ORDER BY m.event_date) AS events
    FROM states AS s
    LEFT JOIN maritime AS m ON list_contains(m.party_list, s.iso3)
    GROUP BY s.iso3, s.name
)
SELECT
    'member_states_exercise_with_jmsdf' AS claim_id,
    7 AS claim_number,
    'Germany, Italy, France and the Netherlands exercise with the Japan Maritime Self-Defense Force.' AS claim_text,
    'paraphrased' AS wording,
    'dated events' AS claim_kind,
    string_agg(printf('%s %d (from %s)', name, n, coalesce(strftime(first_date, '%Y'), '-')), ', '
               ORDER BY name) AS warehouse_figure,
    count_if(n > 0)::DOUBLE AS warehouse_value,
    'member states of the four with a maritime exercise' AS unit,
    coalesce(strftime(min(first_date), '%Y'), '-') || '-' || coalesce((SELECT strftime(max(event_date), '%Y')
                                                                        FROM maritime), '-') AS period_used,
    'Germany, Italy, France, Netherlands with Japan (fact_security_events)' AS scope_used,
    CASE WHEN bool_and(n > 0) THEN 'supported' ELSE 'not enough data' END AS verdict,
    CASE WHEN bool_and(n > 0) THEN 'Each of the four has at least one maritime exercise with Japan: '
         ELSE 'Not recorded for ' || string_agg(name, ', ' ORDER BY name) FILTER (WHERE n = 0) || '. Recorded: ' END
        || coalesce(string_agg(name || ': ' || events, ' / ' ORDER BY name) FILTER (WHERE n > 0), 'none') || '.'
        AS verdict_detail,
    'fact_security_events' AS evidence_tables
FROM per_state
