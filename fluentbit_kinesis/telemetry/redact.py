"""One function that makes any text safe to show: `redact`.

Service and exception messages can quote what they were sent: AWS's
InvalidSignatureException quotes the canonical request, x-amz-security-token
included; a proxy error can quote the proxy URL with its password. Every such
message passes here before it reaches a log line, an error, a metric or a dead
letter: it is cut to a bounded length, and credentials are masked:
  - the values of the secret options and the proxy password (exact matches),
  - credentials in URLs (scheme://user:PASSWORD@host, even with @ or / in it),
  - token, signature, key, password and Authorization fields (name: or = value),
  - AWS access key ids, 40-character secret keys and base64 runs of 200+ characters (tokens).
"""
import re
import threading
from urllib.parse import quote

MAX_CHARS = 500
MASK = "****"
MIN_SECRET_CHARS = 4  # shorter values would mask ordinary words

_known = ()  # longest first: one secret may contain another
_known_lock = threading.Lock()

_LINE_BREAKS = re.compile(r"[\r\n]+")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^\s'\"<>]*)@")
_FIELD = re.compile(
    r"(?i)((?:x-amz-security-token|x-amz-signature|x-amz-credential|security[_-]?token|session[_-]?token"
    r"|secret[_-]?(?:access[_-]?)?key|signature|authorization|password|passwd|credential"
    r"|external[_-]?id|access[_-]?key[_-]?id|aws[_-]?access[_-]?key)"
    r"[\"']?\s*[:=]\s*[\"']?)"
    r"(?:(?:AWS4-HMAC-SHA256|Basic|Bearer)\s+)?[^\s\"',;&]+")
_ACCESS_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|AROA|AIDA|ANPA|ANVA|AGPA|AIPA)[A-Z0-9]{16}(?![A-Z0-9])")
_SECRET_KEY = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_LONG_TOKEN = re.compile(r"[A-Za-z0-9/+=_-]{200,}")  # session tokens are 400+; paths rarely 200
_PATTERNS = (
    (_FIELD, r"\1" + MASK),
    (_ACCESS_KEY_ID, MASK),
    (_SECRET_KEY, MASK),
    (_LONG_TOKEN, MASK),
)


def remember_secret(value):
    """Masks this exact value (and its URL-encoded form) wherever it appears from now on."""
    if not value or len(value) < MIN_SECRET_CHARS:
        return
    global _known
    with _known_lock:
        values = set(_known) | {value, quote(value, safe="")}
        _known = tuple(sorted(values, key=len, reverse=True))


def url_password(url):
    """The password part of scheme://user:password@host, or None."""
    match = _URL_USERINFO.search(url or "")
    if not match or ":" not in match.group(2):
        return None
    return match.group(2).partition(":")[2] or None


def _mask_userinfo(match):
    user, colon, _password = match.group(2).partition(":")
    shown = f"{user}:{MASK}" if colon and "/" not in user else MASK
    return f"{match.group(1)}{shown}@"


def redact(text, limit=MAX_CHARS):
    """`text` (any object: str() of it) with credentials masked, cut to `limit`
    characters (None: not cut)."""
    text = _LINE_BREAKS.sub(" ", str(text))  # one message, one line
    if limit is not None and len(text) > 8 * limit:
        # bound the work; drop the word cut in two (it may be part of a secret),
        # unless it is all there is: only the first `limit` characters are kept
        text = re.sub(r"\S*$", "", text[:8 * limit]) or text[:8 * limit]
    for secret in _known:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _URL_USERINFO.sub(_mask_userinfo, text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "..."
    return text
