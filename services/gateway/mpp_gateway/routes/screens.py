"""The screens: a static web app (``web/`` at the repository's root, ``WEB_ROOT`` in an image)
served by the gateway under stable paths, on the public API only. Every page carries a strict
Content-Security-Policy: scripts, styles, images and connections from this host alone."""

from __future__ import annotations

import functools
import gzip
import mimetypes
from pathlib import Path

from marshmallow import Schema, fields
from werkzeug.wrappers import Response

from mpp_chassis.web import json_response
from mpp_contracts.errors import NotFound
from mpp_gateway.http import route

# the repository's web/ when the gateway runs from a checkout (services/gateway/mpp_gateway/…)
DEFAULT_WEB_ROOT = Path(__file__).resolve().parents[4] / "web"

PAGES = {
    "kiosk": "kiosk.html",
    "board": "board.html",
    "counter": "counter.html",
    "book": "book.html",
    "agency": "agency.html",
    "ticket": "ticket.html",
    # the mall's own pages (issue 17): citizens' transparency page, the mall admin's page
    "ikm": "ikm.html",
    "mall": "mall.html",
}

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; media-src 'self'; font-src 'self'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # a ticket page's address holds its access code
}

# the mall's zone as citizens name it
ZONE_NAMES = {
    "Asia/Jakarta": "WIB",
    "Asia/Pontianak": "WIB",
    "Asia/Makassar": "WITA",
    "Asia/Jayapura": "WIT",
}


COMPRESSIBLE = ("text/", "application/json", "image/svg+xml")


@functools.lru_cache(maxsize=128)
def _compressed(path: Path, mtime_ns: int) -> bytes:
    """A file's gzip, made once per version of it (a phone on a weak link gets a third of the
    bytes; a kiosk's HTML, scripts and styles compress 3-4 fold)."""
    return gzip.compress(path.read_bytes(), compresslevel=9, mtime=0)


class MallSchema(Schema):
    id = fields.String(required=True, metadata={"example": "mpp-local"})
    name = fields.String(required=True, metadata={"example": "Mal Pelayanan Publik"})
    timezone = fields.String(required=True, metadata={"example": "Asia/Jakarta"})
    zone = fields.String(required=True, metadata={"example": "WIB"})


class ScreensRoutes:
    def _web_root(self) -> Path:
        configured = self.config.get("WEB_ROOT")
        return Path(configured) if configured else DEFAULT_WEB_ROOT

    def _file(self, request, relative: str, *, cache: str) -> Response:
        root = self._web_root().resolve()
        path = (root / relative).resolve()
        if root not in path.parents or not path.is_file():
            raise NotFound("ROUTE_NOT_FOUND", "no such screen file")
        mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if path.suffix in (".js", ".mjs"):
            mimetype = "text/javascript"
        headers = {**SECURITY_HEADERS, "Cache-Control": cache, "Vary": "Accept-Encoding"}
        if mimetype.startswith(COMPRESSIBLE) and "gzip" in request.accept_encodings:
            body = _compressed(path, path.stat().st_mtime_ns)
            headers["Content-Encoding"] = "gzip"
        else:
            body = path.read_bytes()
        return Response(body, mimetype=mimetype, headers=headers)

    def _page(self, request, name: str) -> Response:
        # pages are small and name their assets by path: always revalidated, never stale
        return self._file(request, PAGES[name], cache="no-cache")

    @route("GET", "/kiosk", summary="The kiosk screen", media_type="text/html")
    def kiosk_page(self, request, principal):
        return self._page(request, "kiosk")

    @route("GET", "/board", summary="The display board screen", media_type="text/html")
    def board_page(self, request, principal):
        return self._page(request, "board")

    @route("GET", "/agency", summary="The agency dashboard screen", media_type="text/html")
    def agency_page(self, request, principal):
        return self._page(request, "agency")

    @route("GET", "/book", summary="The booking screen (a phone)", media_type="text/html")
    def book_page(self, request, principal):
        return self._page(request, "book")

    @route("GET", "/counter", summary="The officer's console screen", media_type="text/html")
    def counter_page(self, request, principal):
        return self._page(request, "counter")

    # -- the mall's own pages: public IKM and leaderboard, the mall admin's page

    @route(
        "GET",
        "/ikm",
        summary="The public satisfaction page (IKM per agency, leaderboard)",
        media_type="text/html",
    )
    def ikm_page(self, request, principal):
        return self._page(request, "ikm")

    @route("GET", "/mall", summary="The mall admin's screen", media_type="text/html")
    def mall_page(self, request, principal):
        return self._page(request, "mall")

    @route(
        "GET",
        "/t/{ticket}",
        summary="The citizen's ticket page (the slip's QR; opened with ?code=)",
        media_type="text/html",
    )
    def ticket_page(self, request, principal, ticket):
        return self._page(request, "ticket")

    @route("GET", "/web/{asset}", media_type="application/octet-stream")
    def web_asset(self, request, principal, asset):
        if asset.endswith(".html"):
            raise NotFound("ROUTE_NOT_FOUND", "pages have their own paths")
        return self._file(request, asset, cache="no-cache")

    @route("GET", "/web/vendor/{asset}", media_type="application/octet-stream")
    def web_vendor_asset(self, request, principal, asset):
        if not asset.endswith((".js", ".mjs", ".css")):
            raise NotFound("ROUTE_NOT_FOUND", "no such screen file")
        return self._file(request, f"vendor/{asset}", cache="max-age=86400")

    @route(
        "GET",
        "/v1/mall",
        response=MallSchema,
        summary="The mall: its id, name and time zone (for the screens)",
    )
    def mall(self, request, principal):
        timezone = self.config.get("MALL_TIMEZONE", "Asia/Jakarta")
        return json_response(
            {
                "id": self.config.get("MALL_ID", "mpp-local"),
                "name": self.config.get("MALL_NAME", "Mal Pelayanan Publik"),
                "timezone": timezone,
                "zone": ZONE_NAMES.get(timezone, timezone),
            }
        )
