"""Reports API: the compliance report of a party over a period, as JSON, Markdown or HTML."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import AwareDatetime

from deconfliction.http import ActorDep, ServicesDep, read
from deconfliction.reports import render
from deconfliction.reports.service import ComplianceReport, compliance

router = APIRouter(prefix="/v1/reports", tags=["reports"])


@router.get("/compliance", response_model=ComplianceReport)
def compliance_report(
    svc: ServicesDep,
    actor: ActorDep,
    party: Annotated[str, Query(pattern=r"^[A-Z][A-Z0-9_]{1,15}$")],
    start: Annotated[AwareDatetime, Query(alias="from")],
    end: Annotated[AwareDatetime, Query(alias="to")],
    format: Annotated[Literal["json", "md", "html"], Query()] = "json",
) -> Response:
    with read(svc) as conn:
        report = compliance(conn, actor, party, start, end, svc.clock())
    if format == "md":
        return PlainTextResponse(render.as_markdown(report), media_type="text/markdown")
    if format == "html":
        return HTMLResponse(render.as_html(report))
    return JSONResponse(report.model_dump(mode="json"))
