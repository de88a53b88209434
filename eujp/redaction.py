"""Secrets out of every log record: the one redactor of the process (`REDACTOR`).

Each component that holds a secret registers it here as soon as it knows it (`redact_in_logs(*values)`), and from
then on every log record the process creates, of any logger at any level (botocore's, urllib3's, httpx's and
httpcore's DEBUG lines included), has it replaced by `***`, in its message and in the traceback it carries:

- the S3 credentials the clients are made with (eujp.storage.s3_client), plus the forms botocore and urllib3
  write AWS credential material in, in the records of AWS_LOGGERS (credentials the redactor was never told of);
- the lake's PostgreSQL password (eujp.lake.lake_config, a `postgres:` EUJP_LAKE_CATALOG; eujp.bi for a reader);
- the alert webhook URL's secret parts (eujp.alerts.webhook_secrets: its path after the first segment, its query
  values), so that a line quoting the URL keeps its host and path prefix: `POST https://hooks.slack.com/services/***`.

The redaction is installed once per process, by whichever component registers a secret first, in the logging
record factory: every handler then gets the redacted record, whoever added it and when (Prefect's console and API
handlers, which its logging setup may make again, a plain stderr handler, pytest's capture). A filter on the
`botocore` logger would not see the records of `botocore.endpoint`, and one on the handlers would miss the
handlers added later. Messages the project writes itself redact their secrets where they are made (eujp.lake's
`LakeConfig.redact`, eujp.alerts.redact, eujp.http.redact_url).
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import unquote

REDACTED = "***"

# Loggers whose DEBUG lines carry what a signed request holds (the Authorization header, the session token, the
# canonical request, a presigned URL's query) or what an STS answer returns.
AWS_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3")
_AWS_PATTERNS = tuple(re.compile(p) for p in (
    # SigV4's credential scope, AKIA.../date/region/s3/aws4_request: the Authorization header (Credential=) and a
    # presigned URL's query (X-Amz-Credential=, its '/' as %2F)
    r"(?i)(credential=)[^/%\s,;'\"&]+",
    # SigV2's: a presigned URL's AWSAccessKeyId=, the Authorization header's "AWS {key id}:{signature}"
    r"(?i)(awsaccesskeyid=)[^\s,;'\"&]+",
    r"(?i)(authorization['\"]?\s*[:=]\s*b?['\"]?AWS )[^:\s'\"]+",
    # the session token: a header in a request's repr ('X-Amz-Security-Token': b'...'), the canonical request's
    # line (x-amz-security-token:...), a presigned URL's parameter (X-Amz-Security-Token=...)
    r"(?i)(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)[^'\"\s&,;]+",
    # boto3's own names: keyword arguments, a dict's repr, a config file's lines
    r"(?i)(aws_(?:access_key_id|secret_access_key|session_token)['\"]?\s*[:=]\s*b?['\"]?)[^'\"\s&,;}]+",
    # temporary credentials in an answer (STS's XML, the container and instance endpoints' JSON)
    r"(<(?:AccessKeyId|SecretAccessKey|SessionToken)>)[^<]+",
    r"(?i)(\"(?:AccessKeyId|SecretAccessKey|SessionToken|Token)\"\s*:\s*\")[^\"]+",
))
# A known value shorter than this is not replaced in every record (a key id "test" would blank every "test");
# the AWS patterns above still hide it where botocore writes it, and the project's own messages hide a short
# PostgreSQL password by its keyword (`redact_conninfo`).
MIN_KNOWN_LENGTH = 8


class SecretRedactor(logging.Filter):
    """Replaces secrets in log records by `***`, keeping the record: in every record, the values registered with
    `remember` (in its message, and in the text of the exception it carries); in the records of AWS_LOGGERS (and
    their children), also every form botocore and urllib3 write AWS credential material in (`_AWS_PATTERNS`)."""

    def __init__(self) -> None:
        super().__init__()
        self._known: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def remember(self, *values: str | None) -> None:
        """Values to replace in every record from now on (a key id, a password, a webhook's token), as they are
        and as a URL writes them (percent-encoded, '/' kept or not); those under MIN_KNOWN_LENGTH are left out."""
        from urllib.parse import quote

        kept = {v for v in values if v and len(v) >= MIN_KNOWN_LENGTH}
        if kept - self._known:
            with self._lock:
                self._known = self._known | kept | {quote(v, safe=safe) for v in kept for safe in ("", "/~")}

    def redact(self, text: str, *, patterns: bool = True) -> str:
        """`text` without the remembered values (and, with `patterns`, without AWS credential material)."""
        for value in sorted(self._known, key=len, reverse=True):
            text = text.replace(value, REDACTED)
        if patterns:
            for pattern in _AWS_PATTERNS:
                text = pattern.sub(rf"\1{REDACTED}", text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        aws = record.name.split(".", 1)[0] in AWS_LOGGERS
        if not aws and not self._known:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - arguments that do not fit the message: the handler reports it
            message = None
        if message is not None:
            redacted = self.redact(message, patterns=aws)
            if redacted != message:
                record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            # the traceback as a handler's formatter would write it (logging.Formatter.format keeps exc_text)
            text = logging.Formatter().formatException(record.exc_info)
            redacted = self.redact(text, patterns=aws)
            if redacted != text:
                record.exc_text = redacted
        return True


REDACTOR = SecretRedactor()


def redact_secrets(text: str) -> str:
    """`text` (an error of a library, about to be part of a message the project shows) without any secret
    registered so far, nor the password of a PostgreSQL connection string it may quote (`redact_conninfo`)."""
    return redact_conninfo(REDACTOR.redact(text, patterns=False))
_installing = threading.Lock()
_installed: list[bool] = []


def redact_in_logs(*values: str | None) -> None:
    """Replace `values` in every log record this process creates from now on, and have REDACTOR redact every
    record (installed once per process: the record factory, chained to the one in place)."""
    REDACTOR.remember(*values)
    with _installing:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def redacting_factory(*args, **kwargs) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            REDACTOR.filter(record)
            return record

        logging.setLogRecordFactory(redacting_factory)
        _installed.append(True)


# --- the lake's PostgreSQL password ------------------------------------------------------------------------------

# A PostgreSQL connection string's password, in every spelling libpq accepts: keyword=value (spaces around '=',
# a quoted value with escapes, an unquoted one with backslash escapes), a URI's user:password@ and its
# ?password= / &password= parameter. In a connection string itself (`bare`) an unquoted value ends at a space
# only, as libpq reads it; in a message that quotes one ("... password=pw": connection failed) also at a '"'.
_VALUE = r"""'(?:[^'\\]|\\.)*'?|(?:\\.|[^\s{stop}\\])+"""
_KEYWORD_PASSWORD = re.compile(r"(?i)(?<![?&])\b((?:ssl)?password)\s*=\s*(" + _VALUE.format(stop='"') + ")")
_BARE_KEYWORD_PASSWORD = re.compile(r"(?i)(?<![?&])\b((?:ssl)?password)\s*=\s*(" + _VALUE.format(stop="") + ")")
_URI_PASSWORD = re.compile(r"(?i)(postgres(?:ql)?://[^:/@\s?]*):([^@\s]*)@")
_QUERY_PASSWORD = re.compile(r"(?i)([?&](?:ssl)?password=)([^&\s\"]*)")


def redact_conninfo(conninfo: str, *, bare: bool = False) -> str:
    """`conninfo` (or a message quoting one) with its password replaced by *** (in no spelling is it printed)."""
    keyword = _BARE_KEYWORD_PASSWORD if bare else _KEYWORD_PASSWORD
    text = keyword.sub(lambda m: f"{m.group(1).lower()}=***", conninfo)
    text = _URI_PASSWORD.sub(r"\1:***@", text)
    return _QUERY_PASSWORD.sub(r"\1***", text)


def conninfo_passwords(conninfo: str) -> list[str]:
    """The passwords of a libpq connection string, as written and as libpq reads them (unquoted, unescaped,
    percent-decoded): what the log redactor replaces in every record (eujp.redaction)."""
    found = []
    for m in _BARE_KEYWORD_PASSWORD.finditer(conninfo):
        written = m.group(2)
        inner = written[1:-1] if len(written) > 1 and written.startswith("'") and written.endswith("'") else written
        found += [written, inner, re.sub(r"\\(.)", r"\1", inner)]
    for m in (*_URI_PASSWORD.finditer(conninfo), *_QUERY_PASSWORD.finditer(conninfo)):
        found += [m.group(2), unquote(m.group(2))]
    return sorted({f for f in found if f})
