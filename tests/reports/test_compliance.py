"""The compliance report renders for the demo day, in Markdown, JSON and HTML, from the CLI and
the API; it shows only what the caller may read."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from deconfliction.api import create_app
from deconfliction.cli import app
from deconfliction.sim import syria
from deconfliction.sim.demo import DemoSummary, load_demo
from deconfliction.store.db import make_engine, migrate

NOW = datetime(2030, 6, 1, 5, 30, tzinfo=UTC)
FROM, TO = "2030-06-01T00:00:00Z", "2030-06-03T00:00:00Z"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, DemoSummary, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    engine = make_engine(url)
    migrate(engine)
    summary = load_demo(engine, NOW)
    yield engine, summary, url
    engine.dispose()


@pytest.fixture(scope="module")
def client(demo: tuple[Engine, DemoSummary, str]) -> Iterator[TestClient]:
    app_ = create_app(
        demo[0],
        lambda: NOW + timedelta(minutes=1),
        checkpoint_every_s=None,
        hotline_every_s=None,
        tactical_every_s=None,
    )
    with TestClient(app_) as c:
        yield c


def token(summary: DemoSummary, officer: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {summary.tokens[officer][2]}"}


def test_demo_day_carries_the_rounds_commitments_and_incident(
    demo: tuple[Engine, DemoSummary, str],
) -> None:
    talks = "\n".join(demo[1].talks)
    assert "round 1 2025-04-09 Baku, Azerbaijan: no_agreement" in talks
    assert "round 2 2025-05-08 Baku, Azerbaijan: not_reported" in talks
    assert talks.count("(proposed)") == 3
    assert talks.count("(binding)") == 3
    assert "incident 1 unsafe_proximity reported by TR: acknowledged" in talks


def test_report_json_for_the_demo_day(
    demo: tuple[Engine, DemoSummary, str], client: TestClient
) -> None:
    _, summary, _ = demo
    r = client.get(
        "/v1/reports/compliance",
        params={"party": "IL", "from": FROM, "to": TO},
        headers=token(summary, "tr-duty"),
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["party"] == "IL"
    assert report["generated_for"] == "TR"
    assert report["notifications"]["late"] == 1
    assert [x["title"] for x in report["notifications"]["late_ones"]] == [syria.IL_INTO_PALMYRA]
    (violation,) = report["violations"]
    assert violation["rule_kind"] == "lead_time"
    assert violation["evidence"]["activities"] == [
        report["notifications"]["late_ones"][0]["activity_id"]
    ]
    palmyra = next(row for row in report["rules"] if row["kind"] == "lead_time")
    assert palmyra["violations"] == 1 and palmyra["status"] == "binding"
    assert report["incidents"] == {"reported": 0, "reported_against": 1, "open": 1}
    # The IL duty officer read its hotline message but did not acknowledge it.
    assert report["hotline"]["messages"] >= 1
    assert report["hotline"]["acknowledged"] == 0
    tr = client.get(
        "/v1/reports/compliance",
        params={"party": "TR", "from": FROM, "to": TO},
        headers=token(summary, "tr-duty"),
    ).json()
    assert tr["hotline"]["acknowledged"] == 1
    assert tr["hotline"]["median_ack_s"] == 0.0  # acknowledged when the demo loaded


def test_report_markdown_and_html(
    demo: tuple[Engine, DemoSummary, str], client: TestClient
) -> None:
    _, summary, _ = demo
    params = {"party": "IL", "from": FROM, "to": TO}
    md = client.get(
        "/v1/reports/compliance",
        params={**params, "format": "md"},
        headers=token(summary, "il-duty"),
    )
    assert md.headers["content-type"].startswith("text/markdown")
    assert (
        "| 4 | Flights near Palmyra notified 24 hours ahead | lead_time | binding | 1 |" in md.text
    )
    html = client.get(
        "/v1/reports/compliance",
        params={**params, "format": "html"},
        headers=token(summary, "il-duty"),
    )
    assert html.headers["content-type"].startswith("text/html")
    assert html.text.count("<svg") == 3
    assert "http" not in html.text.replace('xmlns="http://www.w3.org/2000/svg"', "")  # no CDN
    # The bar of the violated commitment is the longest one of its chart.
    chart = html.text.split('aria-label="Violations per commitment"')[1].split("</svg>")[0]
    widths = [float(w) for w in re.findall(r'<rect [^>]*width="([0-9.]+)"', chart)]
    assert max(widths) > 0 and sorted(widths)[:-1] == [0.0] * (len(widths) - 1)


def test_report_bad_input(demo: tuple[Engine, DemoSummary, str], client: TestClient) -> None:
    _, summary, _ = demo
    for params in (
        {"party": "IL", "from": TO, "to": FROM},
        {"party": "XX", "from": FROM, "to": TO},
        {"party": "IL", "from": "2030-06-01T00:00:00", "to": TO},
        {"party": "IL", "from": FROM, "to": TO, "format": "pdf"},
    ):
        r = client.get("/v1/reports/compliance", params=params, headers=token(summary, "il-duty"))
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")


def test_report_from_the_cli(demo: tuple[Engine, DemoSummary, str], tmp_path: Path) -> None:
    _, summary, url = demo
    runner = CliRunner()
    base = ["report", "--party", "IL", "--from", "2030-06-01", "--to", "2030-06-03", "--db", url]
    env = {"DECONFLICTION_TOKEN": summary.tokens["il-duty"][2]}
    md = runner.invoke(app, base, env=env)
    assert md.exit_code == 0, md.output
    assert md.output.startswith("# Compliance report: IL")
    out = tmp_path / "report.json"
    done = runner.invoke(app, [*base, "--format", "json", "--out", str(out)], env=env)
    assert done.exit_code == 0, done.output
    assert json.loads(out.read_text())["notifications"]["late"] == 1
    bad = runner.invoke(app, [*base, "--format", "pdf"], env=env)
    assert bad.exit_code == 2
    assert "error: --format must be md, json or html" in bad.output
