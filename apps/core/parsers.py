"""The one JSON request parser, used by DRF (``JsonBodyParser``) and by the hand-written hot-path
views (``request_json_object``). A body is refused with a JSON 4xx before it can cost much:

- 413 ``body_too_large`` past ``MAX_BODY_BYTES`` (checked on Content-Length, before reading);
- 400 ``json_too_deep`` past ``MAX_DEPTH`` nested arrays or objects (checked on the raw text,
  before the recursive decoder runs; 1,000 levels made it raise RecursionError);
- 400 ``duplicate_key`` when an object names a key twice: which one wins differs between
  parsers (a proxy, a log pipeline and we could read different requests), so we take neither;
- 400 ``malformed_json`` for anything that is not one UTF-8 JSON object: other encodings
  (Python would sniff UTF-16/32), NaN and Infinity, lone surrogates (they cannot be stored or
  sent on), syntax errors, a top-level array or scalar.
"""

from __future__ import annotations

import json
import re

from django.core.exceptions import RequestDataTooBig
from rest_framework.parsers import BaseParser

from .errors import ApplicationError, BadRequest

# Our bodies are a handful of short fields; 16 KiB is generous and still cheap to refuse.
MAX_BODY_BYTES = 16 * 1024
MAX_DEPTH = 16

_STRING_OR_BRACKET = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class BodyTooLarge(ApplicationError):
    status, code = 413, "body_too_large"


class MalformedJson(BadRequest):
    code = "malformed_json"


def body_too_large() -> BodyTooLarge:
    return BodyTooLarge(f"The request body is larger than {MAX_BODY_BYTES} bytes.")


def _content_length(meta) -> int:
    try:
        return int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _depth_within_bound(raw: bytes) -> bool:
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return True  # the usual body: too few brackets to nest deeply
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif token in (b"]", b"}"):
            depth -= 1
    return True


def _refuse_duplicates(pairs: list[tuple[str, object]]) -> dict:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise BadRequest(f"The key {twice!r} appears twice in one object.", code="duplicate_key")
    return value


def _refuse_constant(name: str):
    raise MalformedJson(f"{name} is not a JSON number.")


def json_object_parse(raw: bytes) -> dict:
    """``raw`` as a JSON object (an empty body is ``{}``), or the 4xx that says why not."""
    if len(raw) > MAX_BODY_BYTES:
        raise body_too_large()
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedJson("The body is not UTF-8.") from None
    if not _depth_within_bound(raw):
        raise BadRequest(
            f"The body nests arrays or objects more than {MAX_DEPTH} deep.", code="json_too_deep"
        )
    try:
        value = json.loads(
            text, object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant
        )
    except (ValueError, RecursionError) as exc:
        raise MalformedJson(f"Malformed JSON body: {exc}") from None
    if "\\u" in text:
        try:  # a lone surrogate decodes, but can be neither stored nor sent on
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedJson("The body holds an unpaired UTF-16 surrogate.") from None
    if not isinstance(value, dict):
        raise MalformedJson("The body must be a JSON object.")
    return value


def request_json_object(request) -> dict:
    """The body of a Django request as a JSON object, refused before reading when too long."""
    if _content_length(request.META) > MAX_BODY_BYTES:
        raise body_too_large()
    try:
        raw = request.body
    except RequestDataTooBig:
        raise body_too_large() from None
    return json_object_parse(raw)


class JsonBodyParser(BaseParser):
    """DRF's parser for application/json, with the same bounds as the hand-written views."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        if request is not None and _content_length(request.META) > MAX_BODY_BYTES:
            raise body_too_large()
        raw = stream.read(MAX_BODY_BYTES + 1) if stream is not None else b""
        return json_object_parse(raw)
