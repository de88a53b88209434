"""eujp.http without a server: Retry-After, full-jitter back-off, the policy from the environment and the body
checks. The client against a replay server: tests/integration/test_http.py."""

from __future__ import annotations

import hashlib
import itertools
import random
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eujp.errors import ExtractError
from eujp.http import (
    EXPECT_CSV,
    EXPECT_JSON,
    BodyShape,
    Expect,
    HttpPolicy,
    backoff_delay,
    check_body,
    parse_retry_after,
)


def test_parse_retry_after():
    now = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Tue, 24 Nov 2026 06:01:30 GMT", now) == 90.0
    assert parse_retry_after("Tue, 24 Nov 2026 05:00:00 GMT", now) == 0.0  # in the past: no wait
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None


@given(attempt=st.integers(min_value=1, max_value=40), base=st.floats(0.001, 10), cap=st.floats(0.001, 120),
       seed=st.integers(0, 2**32))
def test_backoff_stays_within_full_jitter_bounds(attempt, base, cap, seed):
    delay = backoff_delay(attempt, HttpPolicy(backoff_base=base, backoff_max=cap), random.Random(seed))
    assert 0 <= delay <= min(cap, base * 2 ** (attempt - 1))


def test_policy_from_env():
    policy = HttpPolicy.from_env({"EUJP_HTTP_READ_TIMEOUT": "2.5", "EUJP_HTTP_MAX_ATTEMPTS": "3",
                                  "EUJP_HTTP_BUDGET_SECONDS": "60"})
    assert (policy.read_timeout, policy.max_attempts, policy.budget_seconds) == (2.5, 3, 60.0)
    assert HttpPolicy.from_env({}) == HttpPolicy()
    with pytest.raises(ExtractError, match="EUJP_HTTP_BACKOFF_BASE"):
        HttpPolicy.from_env({"EUJP_HTTP_BACKOFF_BASE": "fast"})
    with pytest.raises(ExtractError, match="invalid HTTP policy"):
        HttpPolicy.from_env({"EUJP_HTTP_MAX_ATTEMPTS": "0"})


@pytest.mark.parametrize(("content", "headers", "expect", "problem"), [
    (b'{"a": 1}', {"content-type": "application/json"}, EXPECT_JSON, None),
    (b'{"a": ', {}, EXPECT_JSON, "truncated JSON"),
    (b'{"a": 1}}', {}, EXPECT_JSON, "invalid JSON"),
    (b"a,b\r\n1,2\r\n", {"content-type": "text/csv"}, EXPECT_CSV, None),
    (b'{"bytes": "x"}', {}, EXPECT_CSV, "JSON"),
    (b"<?xml version='1.0'?><S:Fault/>", {}, EXPECT_CSV, "XML document"),
    (b"  \r\n", {}, EXPECT_CSV, "empty body"),
    (b"<html>anything</html>", {}, Expect("any"), None),
])
def test_check_body(content, headers, expect, problem):
    found = check_body(content, headers, expect)
    assert (found is None) if problem is None else (problem in found)


@given(content=st.binary(max_size=200) | st.lists(st.sampled_from([b" ", b"\r\n", b"\n", b"\t", b"a", b",", b"x;y", b"\n\n"]),
                                                 max_size=30).map(b"".join),
       cuts=st.lists(st.integers(0, 200), max_size=6))
def test_a_body_shape_learnt_chunk_by_chunk_is_that_of_the_whole_body(content, cuts):
    """What the checks ask of a body written to a file as it arrives (eujp.http.BodyShape) is what they asked of
    the whole body, however it is cut into chunks."""
    shape = BodyShape()
    edges = [0, *sorted(c for c in cuts if c <= len(content)), len(content)]
    for lo, hi in itertools.pairwise(edges):
        shape.feed(content[lo:hi])
    assert shape.size == len(content) and shape.head == content[:4096]
    assert shape.blank == (not content.strip())
    assert shape.multi_line == (b"\n" in content.strip())
    assert shape.has_delimiter == any(d in content for d in (b",", b";", b"\t"))
    assert shape.sha256 == hashlib.sha256(content).hexdigest()
