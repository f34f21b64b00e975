"""What the create's hand-written checks accept, as the regular expressions /openapi.json gives
for them (JSON Schema ``pattern``: ECMA-262 syntax, which Python's ``re`` reads alike).
tests/tasks/test_patterns.py holds each one to the check it describes."""

from __future__ import annotations

from imagegate.catalog import NAME_PATTERN


def _escaped(chars: str) -> str:
    return "".join(f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}" for c in chars)


# What str.strip() strips (all of it below U+3001).
_SPACE = _escaped("".join(c for c in map(chr, range(0x3001)) if c.isspace()))

# schemas.py's GenerationInput.prompt: some character that is not blank, and no NUL.
PROMPT = rf"^[^\x00]*[^\x00{_SPACE}][^\x00]*$"

# A model's name (catalog/__init__.py); one the catalogue does not offer is 404 model_not_found.
MODEL = NAME_PATTERN

# schemas.py's CreateTaskRequest.callback_url: http(s), a host, a port of 0-65535, no user
# info, nothing below "!" nor DEL. The host is given in its ASCII (IDNA) form; the server also
# takes a Unicode host or an [IPv6] literal, which this leaves out.
_HOST = r'[!"$-.0-9;->A-Z\\^-~]+'  # printable ASCII but /?#@:[]
_PORT = "0*([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])?"
CALLBACK_URL = rf"^[Hh][Tt][Tt][Pp][Ss]?://{_HOST}(:{_PORT})?([/?#][^\x00-\x20\x7f]*)?$"

# idempotency.py: 1 to 255 printable ASCII characters; an HTTP header value has no spaces at
# either end (they are not part of it).
IDEMPOTENCY_KEY = "^[!-~]([ -~]*[!-~])?$"

# live.py's Prefer: any preferences (RFC 7240), but a `wait` among them must be 1-60 seconds.
# This matches a Prefer with a wait that is not: the token (after the start or a "," or ";"),
# its value (a run without [,;"] or space, perhaps after a quote), and what ends the run.
_END = r'([,;"\s]|$)'
_BAD_WAIT = (
    rf'"?[^,;"\s]*[^0-9,;"\s][^,;"\s]*{_END}'  # not all digits
    rf'|"?(0+|0*6[1-9]|0*[7-9][0-9]|0*[1-9][0-9]{{2,}}){_END}'  # 0, or over 60
    rf'|"{_END}|([,;]|$)'  # nothing
)
PREFER_WAIT_INVALID = rf"(^|[,;])\s*[Ww][Aa][Ii][Tt]\s*=\s*({_BAD_WAIT})"
