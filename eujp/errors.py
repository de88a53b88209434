"""Errors the pipeline raises on purpose. Each names the source/table and says what was wrong."""


class EujpError(Exception):
    """Base class: an expected failure with a message meant for the operator."""


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
