"""HTML for the dashboard: Jinja2 templates in the package, autoescaped, and small helpers
(links that keep the page's parameters, bar charts drawn as inline SVG, short labels)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from lrs.dashboard.queries import short_name

ENV = Environment(loader=PackageLoader("lrs.dashboard", "templates"),
                  autoescape=select_autoescape(default=True, default_for_string=True))

# Pages hold children's records: never cached, never framed, never named in another site's
# Referer, and no script or style but the server's own files.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self';"
                               " img-src 'self' data:; frame-ancestors 'none'; form-action 'self';"
                               " base-uri 'none'; object-src 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer made Chromium send Origin: null on posts
    "Cache-Control": "no-store",
}


def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = ENV.get_template(template).render(**HELPERS, **context)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def class_url(class_id: str, as_of: str | None = None) -> str:
    url = f"/dashboard/classes/{quote(class_id, safe='')}"
    return f"{url}?{urlencode({'as_of': as_of})}" if as_of else url


def learner_url(learner: str, as_of: str | None = None) -> str:
    url = f"/dashboard/learners/{quote(learner, safe='')}"
    return f"{url}?{urlencode({'as_of': as_of})}" if as_of else url


def class_label(class_id: str) -> str:
    """A class as a teacher names it: "team:Class 1" is Class 1."""
    kind, sep, rest = class_id.partition(":")
    return rest if sep and kind in ("team", "grouping", "roster") and rest else class_id


def bars(values: Sequence[float], labels: Sequence[str], what: str, width: int, height: int) -> str:
    """A bar chart as inline SVG (no script, no style attribute: the page's CSP allows neither
    inline), with a title per bar and a text alternative for screen readers."""
    top = max([*values, 1.0])
    step = width / max(len(values), 1)
    gap = 1 if step > 3 else 0
    shapes = []
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        h = 0 if value <= 0 else max(1.0, (height - 14) * value / top)
        shapes.append(
            f'<rect x="{i * step:.1f}" y="{height - 12 - h:.1f}" width="{max(step - gap, 1):.1f}"'
            f' height="{h:.1f}"><title>{escape(f"{value:g} {what} {label}")}</title></rect>')
    first, last = (labels[0], labels[-1]) if labels else ("", "")
    summary = (f"{what} {first} to {last}: " + ", ".join(f"{v:g}" for v in values)) if values else ""
    # The dates go under the chart as text: inside an SVG stretched to the page they stretch too.
    return (f'<figure class="chart"><svg class="bars" viewBox="0 0 {width} {height - 12}"'
            f' width="100%" role="img" aria-label="{escape(summary)}" preserveAspectRatio="none">'
            f'{"".join(shapes)}</svg><figcaption aria-hidden="true"><span>{escape(first)}</span>'
            f'<span>{escape(last)}</span></figcaption></figure>')


def activity_name(iri: str) -> str:
    """An activity's last two path segments (items are numbered within their competency)."""
    parts = [p for p in iri.split("?", 1)[0].rstrip("/").split("/") if p]
    return "/".join(parts[-2:]) if len(parts) > 3 else iri


def percent(probability: float) -> int:
    """Rounded down, so that 98 and more is always the mastered level (0.98)."""
    return int(probability * 100)


def probability(value: float) -> str:
    """Two decimals, rounded down like ``percent``: 0.98 is always mastered."""
    return f"{int(value * 100) / 100:.2f}"


def plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


HELPERS: dict[str, Callable[..., Any]] = {
    "class_url": class_url, "learner_url": learner_url, "class_label": class_label,
    "short": short_name, "bars": bars, "activity": activity_name, "percent": percent,
    "probability": probability, "plural": plural,
}
