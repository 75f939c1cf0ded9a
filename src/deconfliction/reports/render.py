"""The compliance report as Markdown, JSON, or a printable HTML page with inline SVG charts
(drawn here: no script, no CDN, so the page prints to PDF as it is)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from html import escape

from deconfliction.reports.service import ComplianceReport


def _t(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%MZ")


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} s"


def as_json(report: ComplianceReport) -> str:
    return json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False)


def as_markdown(report: ComplianceReport) -> str:
    n, h, i = report.notifications, report.hotline, report.incidents
    lines = [
        f"# Compliance report: {report.party}",
        "",
        f"Period {_t(report.start)} to {_t(report.end)}; generated {_t(report.generated_at)}"
        f" for {report.generated_for} (what {report.generated_for} may read).",
        "",
        "## Notifications",
        "",
        f"- made: {n.made}",
        f"- late (inside a notify zone's lead time): {n.late}",
        f"- acknowledged by another party: {n.acknowledged}",
    ]
    lines += [f"  - late: activity {x.activity_id} {x.title}" for x in n.late_ones]
    lines += ["", "## Commitments", "", "| id | title | kind | status | violations |"]
    lines += ["|---|---|---|---|---|"]
    lines += [
        f"| {r.commitment_id} | {r.title} | {r.kind} | {r.status} | {r.violations} |"
        for r in report.rules
    ]
    lines += ["", f"## Violations ({len(report.violations)})", ""]
    lines += [
        f"- {_t(v.at)} commitment {v.commitment_id} ({v.rule_kind}, {v.source}): {v.description}"
        for v in report.violations
    ] or ["none"]
    lines += [
        "",
        "## Hotline",
        "",
        f"- messages to {report.party}: {h.messages}, acknowledged {h.acknowledged}, "
        f"unacknowledged {h.unacknowledged}",
        f"- acknowledgement time: median {_seconds(h.median_ack_s)}, "
        f"longest {_seconds(h.max_ack_s)}",
        "",
        "## Incidents",
        "",
        f"- reported by {report.party}: {i.reported}; against {report.party}: "
        f"{i.reported_against}; not closed: {i.open}",
    ]
    return "\n".join(lines) + "\n"


def bar_chart(title: str, bars: Sequence[tuple[str, float]], unit: str = "") -> str:
    """A horizontal bar chart as inline SVG."""
    width, label_w, row_h = 640, 260, 22
    height = 30 + row_h * max(len(bars), 1)
    top = max((v for _, v in bars), default=0.0) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>',
    ]
    if not bars:
        parts.append('<text x="0" y="44">none</text>')
    for k, (label, value) in enumerate(bars):
        y = 26 + k * row_h
        w = (width - label_w - 80) * value / top
        parts.append(f'<text x="0" y="{y + 14}">{escape(label[:40])}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 6}" fill="#4a6fa5"/>'
        )
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 14}">{value:g}{unit}</text>')
    parts.append("</svg>")
    return "".join(parts)


def as_html(report: ComplianceReport) -> str:
    n, h = report.notifications, report.hotline
    violations_chart = bar_chart(
        "Violations per commitment",
        [(f"{r.commitment_id} {r.title}", r.violations) for r in report.rules],
    )
    ack_chart = bar_chart(
        "Hotline acknowledgement time per message",
        [
            (f"{x.message_id} {x.priority}", x.acknowledged_after_s)
            for x in h.times
            if x.acknowledged_after_s is not None
        ],
        " s",
    )
    notif_chart = bar_chart(
        "Notifications",
        [("made", n.made), ("late", n.late), ("acknowledged", n.acknowledged)],
    )
    rows = "".join(
        f"<tr><td>{_t(v.at)}</td><td>{v.commitment_id}</td><td>{escape(v.rule_kind)}</td>"
        f"<td>{escape(v.source)}</td><td>{escape(v.description)}</td></tr>"
        for v in report.violations
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Compliance report {escape(report.party)}</title>"
        "<style>body{font-family:sans-serif;max-width:800px;margin:2em auto}"
        "table{border-collapse:collapse;width:100%}td,th{border:1px solid #999;padding:4px}"
        "svg{display:block;margin:1em 0;font-size:12px}"
        "@media print{section{break-inside:avoid}}</style></head><body>"
        f"<h1>Compliance report: {escape(report.party)}</h1>"
        f"<p>Period {_t(report.start)} to {_t(report.end)}; generated "
        f"{_t(report.generated_at)} for {escape(report.generated_for)}.</p>"
        f"<section><h2>Notifications</h2>{notif_chart}</section>"
        f"<section><h2>Commitments</h2>{violations_chart}</section>"
        f"<section><h2>Violations ({len(report.violations)})</h2><table><tr><th>time</th>"
        f"<th>commitment</th><th>rule</th><th>seen in</th><th>what</th></tr>{rows}</table>"
        "</section>"
        f"<section><h2>Hotline</h2><p>{h.messages} messages, {h.acknowledged} acknowledged "
        f"(median {_seconds(h.median_ack_s)}, longest {_seconds(h.max_ack_s)}), "
        f"{h.unacknowledged} not acknowledged.</p>{ack_chart}</section>"
        f"<section><h2>Incidents</h2><p>reported {report.incidents.reported}, against "
        f"{report.incidents.reported_against}, not closed {report.incidents.open}</p></section>"
        "</body></html>\n"
    )


RENDERERS = {"md": as_markdown, "json": as_json, "html": as_html}
