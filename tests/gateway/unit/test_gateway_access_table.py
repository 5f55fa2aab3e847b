"""docs/api-guide.md's who-can-read-what table, held to the route table: a route added, removed
or given other roles without its row fails here."""

from __future__ import annotations

import re
from pathlib import Path

import mpp_gateway.service  # noqa: F401  (registers every route)
from mpp_gateway.http import ROUTES, Route

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "api-guide.md"
START, END = "<!-- access:start -->", "<!-- access:end -->"
ROW = re.compile(r"^\| (\w+) \| `([^`]+)` \| ([^|]+) \| ([^|]+) \|$")


def who(route: Route) -> str:
    """The roles column as the route table says it: public, or the roles (mall_admin always
    passes), with "own agency" where the path's agency must be the key's."""
    if route.roles is None:
        return "public"
    roles = ", ".join(("mall_admin", *route.roles))
    return roles + (" (own agency)" if route.agency_param else "")


def documented() -> dict[tuple[str, str], tuple[str, str]]:
    text = GUIDE.read_text()
    table = text[text.index(START) + len(START) : text.index(END)]
    rows = {}
    for line in table.strip().splitlines()[2:]:
        match = ROW.match(line.strip())
        assert match, f"not a row of the table: {line}"
        method, path, roles, what = (part.strip() for part in match.groups())
        assert (method, path) not in rows, f"{method} {path} twice"
        rows[(method, path)] = (roles, what)
    return rows


def test_every_route_has_its_row_with_the_roles_the_route_table_gives():
    rows = documented()
    routes = {(r.method, r.path): r for r in ROUTES}
    assert sorted(rows) == sorted(routes), (
        f"undocumented: {sorted(set(routes) - set(rows))}; gone: {sorted(set(rows) - set(routes))}"
    )
    for key, route in routes.items():
        roles, what = rows[key]
        assert roles == who(route), f"{key}: the table says {roles!r}, the route {who(route)!r}"
        assert what, f"{key}: say what it shows or does, and to whom"
