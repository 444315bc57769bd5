"""Parser for the ListUsers filter: a small subset of AIP-160.

Grammar: ``condition ("AND" condition)*`` where a condition is ``state = USER_STATE_X``,
``email = "text"`` or ``username = "text"``; string values are double-quoted with ``\\"`` and
``\\\\`` escapes. Each field may appear once.
"""

from __future__ import annotations

import re

from usermgmt_server.domain.errors import FieldViolation, InvalidArgument
from usermgmt_server.domain.identifiers import identifier_key
from usermgmt_server.domain.model import UserFilter, UserState

FILTER_MAX = 1024
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<op>=)
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_STATE_PREFIX = "USER_STATE_"


def _invalid(description: str) -> InvalidArgument:
    return InvalidArgument([FieldViolation("filter", description)])


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise _invalid(f"unexpected character at offset {position}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


def parse_filter(text: str) -> UserFilter:
    """Parse ``text`` into a ``UserFilter``; raises ``InvalidArgument`` naming the problem."""
    if len(text) > FILTER_MAX:
        raise _invalid(f"must be at most {FILTER_MAX} characters")
    tokens = _tokens(text)
    values: dict[str, str] = {}
    index = 0
    while index < len(tokens):
        if values:
            if tokens[index] != ("word", "AND"):
                raise _invalid("conditions must be joined by AND")
            index += 1
        condition = tokens[index : index + 3]
        if len(condition) < 3 or condition[0][0] != "word" or condition[1][0] != "op":
            raise _invalid("expected a condition such as state = USER_STATE_ACTIVE")
        (_, name), _, (value_kind, value) = condition
        if name in values:
            raise _invalid(f"{name} appears more than once")
        if name == "state":
            if value_kind != "word":
                raise _invalid("state takes an enum name such as USER_STATE_ACTIVE")
            values[name] = value
        elif name in ("email", "username"):
            if value_kind != "string":
                raise _invalid(f'{name} takes a double-quoted string, e.g. {name} = "..."')
            values[name] = _unquote(value)
        else:
            raise _invalid(f"unknown field {name!r}; use state, email or username")
        index += 3
    return UserFilter(
        state=_parse_state(values["state"]) if "state" in values else None,
        email_key=identifier_key(values["email"]) if "email" in values else None,
        username_key=identifier_key(values["username"]) if "username" in values else None,
    )


def _parse_state(name: str) -> UserState:
    if name.startswith(_STATE_PREFIX):
        try:
            return UserState[name.removeprefix(_STATE_PREFIX)]
        except KeyError:
            pass
    choices = ", ".join(_STATE_PREFIX + state.name for state in UserState)
    raise _invalid(f"unknown state {name!r}; use one of {choices}")
