"""Text of a record: its strings and bin values as UTF-8, alone or inside
JSON, by the invalid_utf8 policy."""
import base64

import orjson

JSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def no_bin_default(value):
    # unknown ext types: text, as the Go plugin does; a bin value needs the careful encoder
    if isinstance(value, (bytes, bytearray)):
        raise TypeError("bin value")
    return str(value)


class TextPolicy:
    """invalid_utf8: what becomes of msgpack bin values and of strings that are
    not valid UTF-8 (events.decode_chunk keeps their bytes as surrogateescape).
    replace: U+FFFD per bad sequence, as the AWS Go plugin (a bin value that is
    valid UTF-8 is its text); base64: bin values and invalid strings are sent
    as their base64 text; dead_letter: replaced as with replace, and the
    Shaper dead-letters the record. Each call says whether it altered
    anything: those records are counted."""

    def __init__(self, mode="replace"):
        self.mode = mode

    def text(self, value):
        """(str, altered) for a decoded string."""
        if value.isascii():
            return value, False
        try:
            value.encode()
            return value, False
        except UnicodeEncodeError:
            raw = value.encode("utf-8", "surrogateescape")
        if self.mode == "base64":
            return base64.b64encode(raw).decode(), True
        return raw.decode("utf-8", "replace"), True

    def binary(self, raw):
        """(str, altered) for a bin value."""
        if self.mode == "base64":
            return base64.b64encode(raw).decode(), True
        try:
            return raw.decode(), False
        except UnicodeDecodeError:
            return raw.decode("utf-8", "replace"), True

    def json(self, value):
        """(JSON bytes, altered). Valid text without bin values takes one orjson call."""
        try:
            return orjson.dumps(value, default=no_bin_default, option=JSON_OPTIONS), False
        except orjson.JSONEncodeError:
            pass  # a bin value or invalid UTF-8 somewhere (or not encodable at all: raised below)
        altered = []

        def default(item):
            if isinstance(item, (bytes, bytearray)):
                text, changed = self.binary(bytes(item))
                if changed:
                    altered.append(item)
                return text
            return str(item)

        fixed = self._fixed(value, altered)
        return orjson.dumps(fixed, default=default, option=JSON_OPTIONS), bool(altered)

    def _fixed(self, value, altered):
        """value with every invalid string (keys too) made text."""
        kind = type(value)
        if kind is str:
            text, changed = self.text(value)
            if changed:
                altered.append(value)
            return text
        if kind is dict:
            return {self._fixed(k, altered) if type(k) is str else k: self._fixed(v, altered)
                    for k, v in value.items()}
        if kind is list:
            return [self._fixed(v, altered) for v in value]
        return value
