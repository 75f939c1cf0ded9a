"""What a server prepares while it starts, so that the first request after a start (a FLASH
message, say) does not wait for it: FastAPI's request handling of every route, and the locale
data of every language messages are rendered in."""

from __future__ import annotations

from typing import Any

import pytest
from babel import localedata
from fastapi._compat import v2
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from deconfliction.api import create_app
from deconfliction.hotline import templates
from tests.api.conftest import OfficerClient
from tests.conftest import FakeClock


def test_the_first_requests_build_no_validators_and_load_no_locale(
    engine: Engine, clock: FakeClock, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    templates.text_direction.cache_clear()  # as in a new process
    monkeypatch.setattr(localedata, "_cache", {})
    app = create_app(
        engine, clock, checkpoint_every_s=None, hotline_every_s=None, tactical_every_s=None
    )
    with TestClient(app) as client:  # started
        # FastAPI builds a route's fields (a pydantic validator each) at the first request
        # that reaches its router, unless start-up made it do so.
        built: list[Any] = []
        post_init = v2.ModelField.__post_init__

        def counted(self: v2.ModelField) -> None:
            built.append(self)
            post_init(self)

        monkeypatch.setattr(v2.ModelField, "__post_init__", counted)
        loaded = dict(localedata._cache)
        tr, il = OfficerClient(client, tokens["tr-duty"]), OfficerClient(client, tokens["il-duty"])
        assert tr.get("/v1/me").status_code == 200
        message = {"type": "notice", "to": ["IL"], "subject": "s", "text": "t", "language": "he"}
        sent = tr.post("/v1/hotline/messages", json=message)
        assert sent.status_code == 201, sent.text
        assert il.get("/v1/hotline/inbox", params={"lang": "ar"}).status_code == 200
        assert built == []
        assert localedata._cache == loaded
