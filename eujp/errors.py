"""Errors the pipeline raises on purpose. Each names the source/table and says what was wrong."""


class EujpError(Exception):
    """Base class: an expected failure with a message meant for the operator."""


class ParseError(EujpError):
    """A payload is not what its wire format promises (bad JSON, missing columns, wrong encoding, ...)."""


class SchemaDriftError(ParseError):
    """A payload's structure changed (new/renamed column or dimension, unknown category code)."""


class ValidationFailed(EujpError):
    """A critical expectation failed: the table's batch is not loaded."""


class AuditFailed(EujpError):
    """The staged warehouse failed its audit: nothing is published."""


class PublishError(EujpError):
    """Objects could not be uploaded or verified: `latest` was not moved."""


class ExtractError(EujpError):
    """A source could not be fetched."""


class PublishDeadlineError(PublishError):
    """The publish did not finish within its deadline (EUJP_PUBLISH_TIMEOUT): stopped, `latest` not moved.
    Never retried: a retry would only spend more of a deadline that has passed."""


class PayloadTooLargeError(ExtractError):
    """A payload is larger than its source's cap (EUJP_MAX_PAYLOAD_MB[_<SOURCE>]): refused before landing."""
