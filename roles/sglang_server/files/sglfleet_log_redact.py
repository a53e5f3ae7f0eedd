"""A logging filter that keeps API keys out of SGLang's logs.

SGLang 0.5.23 logs its whole ServerArgs at start-up, api_key and admin_api_key included. The
sglang_server role points SGLANG_LOGGING_CONFIG_PATH at a dictConfig that puts this filter on the
only handler, so every process SGLang spawns redacts them before anything reaches the journal.
"""

import logging
import re

_KEYED = re.compile(
    r"""(?P<name>\b(?:admin_)?api[_-]key)(?P<sep>['"]?\s*[=:]\s*)(?P<value>'[^']*'|"[^"]*"|[^\s,)}]+)"""
)
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
REDACTED = "<redacted>"


def redact(text: str) -> str:
    def keyed(match: "re.Match[str]") -> str:
        value = match.group("value")
        if value in ("None", "null", "''", '""'):
            return match.group(0)
        quote = value[0] if value[:1] in "'\"" else ""
        return f"{match.group('name')}{match.group('sep')}{quote}{REDACTED}{quote}"

    return _BEARER.sub(rf"\1{REDACTED}", _KEYED.sub(keyed, text))


class RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = ()
        return True
