-- Claim 2: "Japan is the EU's second largest trading partner".
--
-- Method: the warehouse's own rank first. mart_trade_annual computes Japan's goods rank among the EU's main
-- partners from ext_lt_maineu (fact_goods_trade) by exports, imports and total, for a year and aggregate
-- only when it holds the figure of every main partner (its completeness rule). Where such a computed rank
-- exists, the verdict rests on the latest year that has one, taking Japan's best computed rank that year:
-- supported if it is 2 or better, contradicted otherwise; the detail says which published statements
-- (ref_japan_rank, same year and aggregate) agree with it and which differ, and whether a Japan figure the
-- rank uses differs from another published vintage of it (ref_published_trade_figures).
-- Without a computed rank, the verdict falls back to the published ranks (ref_japan_rank): overall ranks are
-- those of scopes goods, services, goods_and_services and unspecified ("overall trading partner");
-- within_Asia ranks are among Asian partners only and cannot support an overall claim. The latest year with
-- an overall rank decides, taking Japan's best rank that year (exports, imports or total); not enough data
-- without any overall rank. The detail says why no rank could be computed, the range of all overall ranks
-- and the within-Asia rank, the likely origin of the claim (data/reference/NOTES.md).
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
computed_all AS (
    SELECT period_year, reporter, japan_rank_exports_computed AS ce, japan_rank_imports_computed AS ci,
           japan_rank_total_computed AS ct, rank_computed_note AS note,
           exports_mio_eur, imports_mio_eur,
           least(coalesce(japan_rank_exports_computed, 999), coalesce(japan_rank_imports_computed, 999),
                 coalesce(japan_rank_total_computed, 999)) AS best
    FROM mart_trade_annual
    WHERE trade_type = 'goods'
      AND coalesce(japan_rank_exports_computed, japan_rank_imports_computed, japan_rank_total_computed) IS NOT NULL
),
computed AS (
    -- the latest year with a computed rank; within a year, the most recent aggregate
    SELECT * FROM computed_all
    ORDER BY period_year DESC,
             CASE reporter WHEN 'EU27_2020' THEN 1 WHEN 'EU28' THEN 2 WHEN 'EU27_2007' THEN 3 ELSE 4 END
    LIMIT 1
),
statements_that_year AS (
    SELECT r.*,
           -- a stated rank agrees or differs only where the warehouse computed that flow's rank (a NULL
           -- comparison would drop the statement from both lists); one with no computed counterpart is unchecked
           NOT coalesce(r.rank_exports <> c.ce, false) AND NOT coalesce(r.rank_imports <> c.ci, false)
           AND NOT coalesce(r.rank_total <> c.ct, false) AS agrees,
           (r.rank_exports IS NOT NULL AND c.ce IS NOT NULL) OR (r.rank_imports IS NOT NULL AND c.ci IS NOT NULL)
           OR (r.rank_total IS NOT NULL AND c.ct IS NOT NULL) AS checkable
    FROM ref_japan_rank AS r, computed AS c
    WHERE r.period_year = c.period_year AND r.reporter = c.reporter AND r.scope = 'goods'
      AND coalesce(r.rank_exports, r.rank_imports, r.rank_total) IS NOT NULL
),
vintages AS (
    -- Japan's figures the computed rank uses, against every other published vintage of the same figure
    SELECT string_agg(line, '; ' ORDER BY line) AS text FROM (  -- sorted: the same text in any row order
    SELECT DISTINCT printf('%s %s %d: warehouse €%.1fbn, %s published €%.1fbn', v.flow, v.reporter,
                                      v.period_year, f.value_mio_eur / 1000, v.source_title, v.value_mio_eur / 1000) AS line
    FROM computed AS c
    JOIN fact_goods_trade AS f
      ON f.partner = 'JP' AND f.period_year = c.period_year AND f.reporter = c.reporter
     AND f.flow IN ('export', 'import')
    JOIN ref_published_trade_figures AS v
      ON v.trade_type = 'goods' AND v.partner = 'JP' AND v.period_year = f.period_year
     AND v.reporter = f.reporter AND v.flow = f.flow AND abs(v.value_mio_eur - f.value_mio_eur) >= 0.05
    )
),
latest_goods_note AS (
    SELECT arg_max(printf('%d %s: %s', period_year, reporter, rank_computed_note), period_year) AS text
    FROM mart_trade_annual WHERE trade_type = 'goods' AND rank_computed_note IS NOT NULL
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
        (SELECT max(period_year) FROM ref_japan_rank WHERE scope = 'within_Asia' AND rank_total = 2) AS asia_last,
        (SELECT count(*) FROM computed_all) AS computed_years,
        (SELECT period_year FROM computed) AS c_year,
        (SELECT reporter FROM computed) AS c_reporter,
        (SELECT best FROM computed) AS c_best,
        (SELECT note FROM computed) AS c_note,
        (SELECT string_agg(printf('%s (%s)', source_title,
                                  concat_ws(', ', printf('exports %d', rank_exports), printf('imports %d', rank_imports),
                                            printf('total %d', rank_total))), '; ' ORDER BY reference_line)
         FROM statements_that_year WHERE agrees AND checkable) AS agreeing,
        (SELECT string_agg(printf('%s (%s)', source_title,
                                  concat_ws(', ', printf('exports %d', rank_exports), printf('imports %d', rank_imports),
                                            printf('total %d', rank_total))), '; ' ORDER BY reference_line)
         FROM statements_that_year WHERE agrees AND NOT checkable) AS unchecked,
        (SELECT string_agg(printf('%s (%s)', source_title,
                                  concat_ws(', ', printf('exports %d', rank_exports), printf('imports %d', rank_imports),
                                            printf('total %d', rank_total))), '; ' ORDER BY reference_line)
         FROM statements_that_year WHERE NOT agrees) AS differing,
        (SELECT text FROM vintages) AS vintage_text,
        (SELECT text FROM latest_goods_note) AS why_not
),
statement_detail AS (
    SELECT CASE WHEN latest_year IS NULL THEN 'The warehouse holds no overall rank of Japan among the EU''s partners.'
                ELSE printf('In %d Japan''s best published overall rank among the EU''s partners is %d, not 2. In all %d '
                            'overall statements (%d-%d) it ranks between %d (%d) and %d, and %d statement(s) give 2nd or '
                            'better.', latest_year, latest_best, statements, first_year, latest_year, best_ever,
                            best_ever_year, worst_ever, statements_rank_2_or_better) END
           || CASE WHEN asia_statements > 0
                   THEN printf(' Japan is the EU''s second largest trading partner IN ASIA (after China) in %d '
                               'statement(s), %d-%d: the claim drops "in Asia".', asia_statements, asia_first,
                               asia_last) ELSE '' END AS text
    FROM summary
)
SELECT
    'japan_second_largest_partner' AS claim_id,
    2 AS claim_number,
    '"Japan is the EU''s second largest trading partner".' AS claim_text,
    'quoted' AS wording,
    'rank' AS claim_kind,
    CASE WHEN c_year IS NOT NULL
         THEN printf('%d %s, computed from ext_lt_maineu: %s (best rank: %d).', c_year, c_reporter, c_note, c_best)
         WHEN latest_year IS NULL THEN 'no overall rank in ref_japan_rank and no computed rank'
         ELSE printf('%d: %s (best rank that year: %d). Overall ranks %d-%d in %d statements, %d-%d.',
                     latest_year, latest_text, latest_best, best_ever, worst_ever, statements, first_year,
                     latest_year) END AS warehouse_figure,
    coalesce(c_best, latest_best)::DOUBLE AS warehouse_value,
    'rank among the EU''s partners (1 = largest)' AS unit,
    CASE WHEN c_year IS NOT NULL THEN printf('%d (latest computed rank)', c_year)
         WHEN latest_year IS NULL THEN NULL
         ELSE printf('%d (latest overall rank); %d-%d (all overall ranks)', latest_year, first_year, latest_year)
    END AS period_used,
    CASE WHEN c_year IS NOT NULL
         THEN printf('%s, goods, among Japan and the EU''s main partners (ext_lt_maineu)', c_reporter)
         ELSE 'EU as published per year (EU27_2007, EU28, EU27_2020); overall ranks, not within Asia' END AS scope_used,
    CASE WHEN c_year IS NOT NULL THEN CASE WHEN c_best <= 2 THEN 'supported' ELSE 'contradicted' END
         WHEN latest_year IS NULL THEN 'not enough data'
         WHEN latest_best <= 2 THEN 'supported'
         ELSE 'contradicted' END AS verdict,
    CASE WHEN c_year IS NOT NULL THEN
            printf('Computed from the warehouse''s ext_lt_maineu figures: in %d (%s) Japan ranks %d at best among the '
                   'EU''s main partners (%s), %s. ', c_year, c_reporter, c_best, c_note,
                   CASE WHEN c_best <= 2 THEN 'as claimed' ELSE 'not 2' END)
            || printf('Published statements for %d %s that agree: %s; that differ: %s.', c_year, c_reporter,
                      coalesce(agreeing, 'none'), coalesce(differing, 'none'))
            || coalesce(printf(' Not checkable (a rank of a flow the warehouse could not rank): %s.', unchecked), '')
            || CASE WHEN vintage_text IS NOT NULL
                    THEN ' The warehouse figure and a published vintage disagree: ' || vintage_text || '.' ELSE '' END
            || ' ' || d.text
         ELSE 'No rank could be computed from the warehouse (the completeness rule needs a figure for every main '
              || 'partner; latest: ' || coalesce(why_not, 'no goods figures') || '); the verdict rests on the '
              || 'published statements. ' || d.text
    END AS verdict_detail,
    'mart_trade_annual, fact_goods_trade, ref_japan_rank, ref_published_trade_figures' AS evidence_tables
FROM summary, statement_detail AS d
