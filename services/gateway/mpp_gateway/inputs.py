"""What the gateway accepts before any schema looks at a request: bounded JSON, storable text,
well-formed path values.

- A JSON body is UTF-8, standard JSON (no ``NaN``/``Infinity``), nested at most
  :data:`MAX_JSON_DEPTH` deep (measured before parsing, so a body nested 100,000 deep costs one
  linear scan, not a recursion), and every key and string in it is storable: no NUL, no unpaired
  surrogate (422 naming the field).
- Query values are storable too, and each parameter is given once (422 naming the parameter);
  an empty value is no value.
- Path values match their name's pattern (:data:`PATH_PATTERNS`: ids are short safe slugs, like
  the UUIDs the services issue); anything else is that resource's 404, before any service or
  database sees it. The OpenAPI document shows the same patterns.
"""

from __future__ import annotations

import json
import re
from typing import Any

from werkzeug.datastructures import ImmutableMultiDict

from mpp_contracts import errors
from mpp_contracts.bounds import ID_MAX, ID_PATTERN, UNSTORABLE_MESSAGE, storable
from mpp_contracts.rpc import TICKET_ACTIONS

MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")

#: path parameter → (pattern, max length); names not listed are resource ids
PATH_PATTERNS: dict[str, tuple[str, int]] = {
    "provider": (r"^[a-z]{1,16}$", 16),
    "action": (r"^[a-z-]{1,16}$", 16),
    "asset": (r"^[A-Za-z0-9._-]{1,64}$", 64),
}
#: the 404 code a malformed value of a path parameter answers (what its service would say)
NOT_FOUND_CODES = {
    "key_id": "API_KEY_NOT_FOUND",
    "asset": "ROUTE_NOT_FOUND",
}
_COMPILED: dict[str, re.Pattern] = {}


#: path parameters whose values are a closed list (the OpenAPI ``enum``, so a generated client
#: sees each one); the route still answers a value outside it with the resource's 404
PATH_ENUMS: dict[str, tuple[str, ...]] = {"action": TICKET_ACTIONS}


def path_schema(name: str) -> dict:
    """The OpenAPI schema of path parameter ``name``."""
    pattern, longest = PATH_PATTERNS.get(name, (ID_PATTERN, ID_MAX))
    schema = {"type": "string", "pattern": pattern, "minLength": 1, "maxLength": longest}
    if name in PATH_ENUMS:
        schema["enum"] = list(PATH_ENUMS[name])
    return schema


def check_path_values(values: dict[str, str]) -> None:
    """404 for a path value no resource could have (a NUL, ``:``, spaces, 2,000 characters)."""
    for name, value in values.items():
        pattern, _ = PATH_PATTERNS.get(name, (ID_PATTERN, ID_MAX))
        compiled = _COMPILED.get(pattern)
        if compiled is None:
            compiled = _COMPILED[pattern] = re.compile(pattern[1:-1])
        if not isinstance(value, str) or compiled.fullmatch(value) is None:
            code = NOT_FOUND_CODES.get(name, f"{name.upper()}_NOT_FOUND")
            raise errors.NotFound(code, f"no {name.replace('_', ' ')} with such an id")


def without_empty(args) -> ImmutableMultiDict:
    """The query without its empty values: ``?date=`` means what no ``date`` means, on every
    route (``allowEmptyValue`` in the document)."""
    return ImmutableMultiDict([(k, v) for k, v in args.items(multi=True) if v != ""])


def check_query(args) -> None:
    """422 for a query parameter (name or value) a database could not store, or given twice
    (no parameter of the API is a list: a second value would be silently ignored)."""
    bad = {
        key: [UNSTORABLE_MESSAGE]
        for key, value in args.items(multi=True)
        if not (storable(key) and storable(value))
    }
    for key, values in args.lists():
        if len(values) > 1:
            bad.setdefault(key, []).append("given more than once")
    if bad:
        raise errors.ValidationFailed("VALIDATION_FAILED", "invalid fields", bad)


def json_depth(raw: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest (strings skipped), without parsing."""
    brackets = _NOT_BRACKET.sub(b"", _JSON_STRING.sub(b"", raw))
    depth = deepest = 0
    for char in brackets:
        if char in b"[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    break
        else:
            depth -= 1
    return deepest


def _not_standard(constant: str):
    raise ValueError(f"{constant} is not JSON")


def parse_json(raw: bytes) -> Any:
    """A JSON document within the bounds above; 400 ``MALFORMED_JSON`` or ``JSON_TOO_DEEP``,
    422 for unstorable text."""
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise errors.BadRequest(
            "JSON_TOO_DEEP", f"request body nests deeper than {MAX_JSON_DEPTH} levels"
        )
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_not_standard)
    except RecursionError:  # the scan above makes this unreachable; belt and braces
        raise errors.BadRequest("JSON_TOO_DEEP", "request body nests too deep") from None
    except ValueError as exc:  # UnicodeDecodeError is one
        raise errors.BadRequest("MALFORMED_JSON", "request body is not valid JSON") from exc
    check_text(body)
    return body


def check_text(document: Any) -> None:
    """422 naming each field (``a.b.0``) whose key or string value is not storable."""
    bad: dict[str, list[str]] = {}
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if not storable(value):
                bad[where or "body"] = [UNSTORABLE_MESSAGE]
        elif isinstance(value, dict):
            for key, item in value.items():
                name = f"{where}.{key}" if where else key
                if not storable(key):
                    name = f"{where}.?" if where else "?"
                    bad[name] = [UNSTORABLE_MESSAGE]
                stack.append((name, item))
        elif isinstance(value, list):
            stack.extend(
                (f"{where}.{i}" if where else str(i), item) for i, item in enumerate(value)
            )
    if bad:
        # a name may itself hold a surrogate: the envelope must still encode as UTF-8
        bad = {name.encode("utf-8", "replace").decode(): msgs for name, msgs in bad.items()}
        raise errors.ValidationFailed("VALIDATION_FAILED", "invalid fields", bad)
