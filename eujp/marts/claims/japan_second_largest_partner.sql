-- Claim 2: "Japan is the EU's second largest trading partner".
--
-- Method: ref_japan_rank holds the published ranks. Overall ranks are those of scopes goods, services,
-- goods_and_services and unspecified ("overall trading partner"); within_Asia ranks are among Asian
-- partners only and cannot support an overall claim. The verdict rests on the latest year with an overall
-- rank, taking Japan's best rank that year (exports, imports or total): supported if it is 2 or better,
-- contradicted otherwise; not enough data without any overall rank. The detail adds the range of all
-- overall ranks and the within-Asia rank, the likely origin of the claim (data/reference/NOTES.md).
WITH overall AS (
    SELECT *, least(coalesce(rank_exports, 999), coalesce(rank_imports, 999), coalesce(rank_total, 999)) AS best
    FROM ref_japan_rank
    WHERE scope IN ('goods', 'services', 'goods_and_services', 'unspecified')
      AND coalesce(rank_exports, rank_imports, rank_total) IS NOT NULL
),
latest AS (
    SELECT max(period_year) AS y FROM overall
),
latest_rows AS (
    SELECT o.* FROM overall AS o, latest AS l WHERE o.period_year = l.y
),
summary AS (
    SELECT
        (SELECT y FROM latest) AS latest_year,
        (SELECT min(best) FROM latest_rows) AS latest_best,
        (SELECT string_agg(printf('%s: %s', scope,
                    concat_ws(', ', printf('exports %d', rank_exports), printf('imports %d', rank_imports),
                              printf('total %d', rank_total))), '; ' ORDER BY reference_line)
         FROM latest_rows) AS latest_text,
        (SELECT count(*) FROM overall) AS statements,
        (SELECT min(period_year) FROM overall) AS first_year,
        (SELECT min(best) FROM overall) AS best_ever,
        (SELECT arg_min(period_year, best) FROM overall) AS best_ever_year,
        (SELECT max(greatest(coalesce(rank_exports, 0), coalesce(rank_imports, 0), coalesce(rank_total, 0)))
         FROM overall) AS worst_ever,
        (SELECT count(*) FROM overall WHERE best <= 2) AS statements_rank_2_or_better,
        (SELECT count(*) FROM ref_japan_rank WHERE scope = 'within_Asia' AND rank_total = 2) AS asia_statements,
        (SELECT min(period_year) FROM ref_japan_rank WHERE scope = 'within_Asia' AND rank_total = 2) AS asia_first,
        (SELECT max(period_year) FROM ref_japan_rank WHERE scope = 'within_Asia' AND rank_total = 2) AS asia_last
)
SELECT
    'japan_second_largest_partner' AS claim_id,
    2 AS claim_number,
    '"Japan is the EU''s second largest trading partner".' AS claim_text,
    'quoted' AS wording,
    'rank' AS claim_kind,
    CASE WHEN latest_year IS NULL THEN 'no overall rank in ref_japan_rank'
         ELSE printf('%d: %s (best rank that year: %d). Overall ranks %d-%d in %d statements, %d-%d.',
                     latest_year, latest_text, latest_best, best_ever, worst_ever, statements, first_year,
                     latest_year) END AS warehouse_figure,
    latest_best::DOUBLE AS warehouse_value,
    'rank among the EU''s partners (1 = largest)' AS unit,
    CASE WHEN latest_year IS NULL THEN NULL
         ELSE printf('%d (latest overall rank); %d-%d (all overall ranks)', latest_year, first_year, latest_year)
    END AS period_used,
    'EU as published per year (EU27_2007, EU28, EU27_2020); overall ranks, not within Asia' AS scope_used,
    CASE WHEN latest_year IS NULL THEN 'not enough data'
         WHEN latest_best <= 2 THEN 'supported'
         ELSE 'contradicted' END AS verdict,
    CASE WHEN latest_year IS NULL THEN 'The warehouse holds no overall rank of Japan among the EU''s partners.'
         ELSE printf('In %d Japan''s best published overall rank among the EU''s partners is %d, not 2. In all %d '
                     'overall statements (%d-%d) it ranks between %d (%d) and %d, and %d statement(s) give 2nd or '
                     'better.', latest_year, latest_best, statements, first_year, latest_year, best_ever,
                     best_ever_year, worst_ever, statements_rank_2_or_better)
              || CASE WHEN asia_statements > 0
                      THEN printf(' Japan is the EU''s second largest trading partner IN ASIA (after China) in %d '
                                  'statement(s), %d-%d: the claim drops "in Asia".', asia_statements, asia_first,
                                  asia_last) ELSE '' END
    END AS verdict_detail,
    'ref_japan_rank' AS evidence_tables
FROM summary
