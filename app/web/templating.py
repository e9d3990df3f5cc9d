"""The Jinja2 environment of the pages, the filters that format figures, and ``render``.

Templates live in ``app/web/templates`` and are autoescaped. Every figure arrives computed
by a service; the filters only say how it reads (``12.3 ms``, ``1.25%``, ``3 h 20 min``).
Static files are linked with :func:`static_url`, which adds a digest of the file, so a
browser may keep them for a year and still never runs an old copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Final

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

WEB_DIR: Final = Path(__file__).resolve().parent
TEMPLATES_DIR: Final = WEB_DIR / "templates"
STATIC_DIR: Final = WEB_DIR / "static"
STATIC_PREFIX: Final = "/static"
HTMX: Final = "vendor/htmx.org-2.0.11/htmx.min.js"
UPLOT_JS: Final = "vendor/uplot-1.6.32/uPlot.iife.min.js"
UPLOT_CSS: Final = "vendor/uplot-1.6.32/uPlot.min.css"

# Pages run no inline script or style and load nothing from elsewhere: an injected
# <script> has nowhere to come from and nowhere to send what it reads.
PAGE_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
NOTHING: Final = "—"


@cache
def static_url(name: str) -> str:
    """The URL of a static file, with its content's digest (cache-busting)."""
    digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]
    return f"{STATIC_PREFIX}/{name}?v={digest}"


def milliseconds(value: float | None) -> str:
    """A duration in milliseconds, readable at any size."""
    if value is None:
        return NOTHING
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def share(value: float | None, digits: int = 2) -> str:
    """A share in [0, 1] as a percentage."""
    return NOTHING if value is None else f"{value * 100:.{digits}f}%"


def percent(value: float | None, digits: int = 2) -> str:
    """A figure that already is a percentage."""
    return NOTHING if value is None else f"{value:.{digits}f}%"


def count(value: float | None) -> str:
    """A count or a rate with thousands separators."""
    if value is None:
        return NOTHING
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}" if value >= 10 else f"{value:,.2f}"


def signed_change(value: float | None) -> str:
    """A relative change (0.25) as ``+25%``."""
    if value is None:
        return NOTHING
    return f"{value * 100:+.0f}%" if abs(value) >= 0.01 else f"{value * 100:+.1f}%"


def instant(value: datetime | None) -> str:
    """A moment in UTC to the minute."""
    return NOTHING if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def day(value: datetime | None) -> str:
    """The UTC day of a moment."""
    return NOTHING if value is None else value.strftime("%Y-%m-%d")


def iso(value: datetime | None) -> str:
    """A moment for a ``<time datetime>`` attribute."""
    return "" if value is None else value.isoformat()


def seconds(value: float | None) -> str:
    """A length of time in seconds, as the two largest units."""
    if value is None:
        return NOTHING
    whole = round(value)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s" if minutes < 10 and secs else f"{minutes} min"
    return f"{secs} s"


def ago(value: datetime | None, now: datetime) -> str:
    """How long before ``now`` a moment was."""
    if value is None:
        return NOTHING
    return f"{seconds(max((now - value).total_seconds(), 0.0))} ago"


def epoch(value: datetime) -> int:
    """A moment as Unix seconds, as the charts take it."""
    return int(value.timestamp())


def series_of(spec: tuple[str, str], points: Sequence[object]) -> dict[str, object]:
    """One chart series: its label, and each point's value of the attribute it names."""
    label, attribute = spec
    return {"label": label, "values": [getattr(point, attribute) for point in points]}


# The uptime bars' colour bands, best first: (at least this percent, CSS class).
UPTIME_BANDS: Final = ((99.9, "u4"), (99.0, "u3"), (95.0, "u2"))


def uptime_class(value: float | None) -> str:
    """The CSS class of one uptime bar: a filter, as a page draws thousands of them."""
    if value is None:
        return "u0"
    return next((name for floor, name in UPTIME_BANDS if value >= floor), "u1")


def words(value: object) -> str:
    """An enum value or identifier as words: ``in_progress`` reads ``in progress``."""
    return str(getattr(value, "value", value)).replace("_", " ")


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        ms=milliseconds,
        share=share,
        percent=percent,
        count=count,
        change=signed_change,
        instant=instant,
        day=day,
        iso=iso,
        seconds=seconds,
        ago=ago,
        words=words,
        epoch=epoch,
        series_of=series_of,
        uptime_class=uptime_class,
    )
    environment.globals.update(
        static_url=static_url, htmx=HTMX, uplot_js=UPLOT_JS, uplot_css=UPLOT_CSS
    )
    return environment


environment: Final = _environment()


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """``template`` rendered with ``context`` (and the request) as a page."""
    html = environment.get_template(template).render({**context, "request": request})
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={"Content-Security-Policy": PAGE_CSP, **(headers or {})},
    )
