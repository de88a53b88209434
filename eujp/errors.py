"""Errors the pipeline raises on purpose. Each names the source/table and says what was wrong."""

import errno
import re


class EujpError(Exception):
    """Base class: an expected failure with a message meant for the operator."""


class SourceModulesError(EujpError):
    """EUJP_SOURCE_MODULES names a module that cannot be imported or declares no source (the message names the
    setting; `eujp` prints it and exits 2, as for any setting to fix)."""


class ParseError(EujpError):
    """A payload is not what its wire format promises (bad JSON, missing columns, wrong encoding, ...).

    `line` and `column` (1-based) locate the error in the payload where the parser knows them (the message
    says them too); eujp.pipeline moves them to the payload's own lines when it parsed a piece of it."""

    def __init__(self, message: str = "", *, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.line, self.column = line, column


class SchemaDriftError(ParseError):
    """A payload's structure changed (new/renamed column or dimension, unknown category code)."""


class ValidationFailed(EujpError):
    """A critical expectation failed: the table's batch is not loaded."""


class AuditFailed(EujpError):
    """The staged warehouse failed its audit: nothing is published."""


class PublishError(EujpError):
    """Objects could not be uploaded or verified: `latest` was not moved."""


class ChecksumMismatchError(PublishError):
    """What a store wrote, or read to upload, is not the content its caller had hashed: the source file changed
    in between, or the write is corrupt."""


class ExtractError(EujpError):
    """A source could not be fetched."""


class NothingLandedError(ExtractError):
    """Nothing of a source was landed on the day a replay reads (`--from-raw DAY`)."""


class PublishDeadlineError(PublishError):
    """The publish did not finish within its deadline (EUJP_PUBLISH_TIMEOUT): stopped, `latest` not moved.
    Never retried: a retry would only spend more of a deadline that has passed."""


class PayloadTooLargeError(ExtractError):
    """A payload is larger than its source's cap (EUJP_MAX_PAYLOAD_MB[_<SOURCE>]): refused before landing."""


INTERRUPTED = "Query interrupted"  # DuckDB's error for a query a Ctrl-C (SIGINT) stopped


def is_interrupt(error: object) -> bool:
    """Whether `error` is a Ctrl-C: a KeyboardInterrupt, or DuckDB's answer to one (the SIGINT reached its query,
    which it reports as its own error): never retried, the run ends as interrupted."""
    if isinstance(error, KeyboardInterrupt):
        return True
    return isinstance(error, Exception) and (type(error).__name__ == "InterruptException"
                                             or str(error) == INTERRUPTED)


# OSErrors of the network, which a retry may not meet again (a local one, ENOTDIR, EACCES, EISDIR, ENOSPC, ..., meets
# the same folder, permission or full disk)
_NETWORK_ERRNOS = frozenset({errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.ETIMEDOUT, errno.EPIPE,
                             errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.ENETUNREACH, errno.ENETDOWN, errno.ENETRESET,
                             errno.EAGAIN})
# what DuckDB's HTTP client (the lake commit to S3) says of a request that found no answer
_DUCKDB_NETWORK = re.compile(r"(?i)could not establish connection|timed? ?out|connection (reset|refused|closed)")


def is_transient(error: BaseException | None) -> bool:
    """Whether retrying what raised `error` may succeed: somewhere in its chain (`__cause__`, `__context__`: a
    PublishError says which object failed, its cause why) an error of the network (ConnectionError, TimeoutError,
    an OSError of the network, botocore's connection errors), an S3 answer botocore's standard retry mode counts as
    transient or throttled (5xx, SlowDown, RequestTimeout, ...: what EUJP_S3_MAX_ATTEMPTS attempts did not get
    past), a DuckDB HTTP request of the lake commit that failed so, or a write the store found corrupt
    (ChecksumMismatchError). Not: local OS errors, a ValueError, a 403, a missing object, ..., which a retry meets
    again."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if _transient(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def _transient(error: BaseException) -> bool:
    if isinstance(error, ChecksumMismatchError | ConnectionError | TimeoutError):
        return True
    import duckdb
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(error, BotoConnectionError | HTTPClientError):  # no answer: refused, closed, timed out
        return True
    if isinstance(error, ClientError):
        from types import SimpleNamespace

        from botocore.retries.standard import (
            RetryContext,
            ThrottledRetryableChecker,
            TransientRetryableChecker,
        )

        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        context = RetryContext(1, parsed_response=error.response,
                               http_response=SimpleNamespace(status_code=status) if status else None)
        return status == 429 or any(c.is_retryable(context)
                                    for c in (TransientRetryableChecker(), ThrottledRetryableChecker()))
    if isinstance(error, OSError):  # (botocore's timeouts are OSErrors too, without an errno: above)
        return error.errno in _NETWORK_ERRNOS
    if isinstance(error, duckdb.HTTPException):
        return error.status_code == 429 or error.status_code >= 500
    return isinstance(error, duckdb.IOException) and bool(_DUCKDB_NETWORK.search(str(error)))
