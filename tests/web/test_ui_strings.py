"""Every string the UI shows has a translation in each of its languages, and no translation is
left over: keys come from the page (data-i18n), the script (t("...")) and, for words the API
sends as codes (kinds, priorities, states...), from the API's own models."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel

from deconfliction.activities.models import ActivityIn
from deconfliction.agreements.models import CommitmentStatus, Outcome
from deconfliction.conflicts.models import ConflictOut
from deconfliction.hotline.models import DEFAULT_LADDER, ChannelState, MessageIn, WarningIn
from deconfliction.incidents.models import IncidentKind, IncidentState
from deconfliction.parties.models import Role
from deconfliction.zones.models import ZoneIn

STATIC = Path(str(resources.files("deconfliction.web") / "static"))
LANGUAGES = ["en", "tr", "he", "ar", "az"]
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def enum_of(model: type[BaseModel], field: str) -> list[str]:
    schema: dict[str, Any] = model.model_json_schema()
    prop = schema["properties"][field]
    for option in [prop, *prop.get("anyOf", [])]:
        if "enum" in option:
            return [str(v) for v in option["enum"]]
        if "$ref" in option:
            return [str(v) for v in schema["$defs"][option["$ref"].split("/")[-1]]["enum"]]
    raise AssertionError(f"{model.__name__}.{field} is not an enumeration")


# Families of keys the script builds as t(`family.${code}`), and the codes each can get.
FAMILIES: dict[str, list[str]] = {
    "kind": enum_of(ActivityIn, "kind"),
    "msgtype": enum_of(MessageIn, "type"),
    "priority": enum_of(MessageIn, "priority"),
    "hazard": enum_of(WarningIn, "hazard"),
    "rule": enum_of(ZoneIn, "rule"),
    "severity": enum_of(ConflictOut, "severity"),
    "state": enum_of(ConflictOut, "state"),
    "incident": list(get_args(IncidentKind)),
    "incident_state": list(get_args(IncidentState)),
    "outcome": list(get_args(Outcome)),
    "commitment": list(get_args(CommitmentStatus)),
    "rung": [rung["name"] for rung in DEFAULT_LADDER] + ["headquarters"],
    "receipt": ["sent", "delivered", "read", "acknowledged"],
    "stream": ["live", "reconnecting"],
    "notify": ["polygon", "circle", "route"],
    "role": list(get_args(Role)),
    "sound": ["on", "off", "blocked"],
    "channel_state": list(get_args(ChannelState)),
}


def used_keys() -> set[str]:
    page = (STATIC / "index.html").read_text()
    script = (STATIC / "app.js").read_text()
    keys = set(re.findall(r'data-i18n(?:-label)?="([\w.]+)"', page))
    keys |= set(re.findall(r'\bt\("([\w.]+)"', script))
    families = set(re.findall(r"\bt\(`(\w+)\.\$\{", script))
    families |= set(re.findall(r"state\.strings\[`(\w+)\.\$\{", script))
    assert families <= FAMILIES.keys(), f"families built in app.js but not listed here: {families}"
    for family in families:
        keys |= {f"{family}.{code}" for code in FAMILIES[family]}
    return keys


def strings(language: str) -> dict[str, str]:
    loaded: dict[str, str] = json.loads((STATIC / "i18n" / f"{language}.json").read_text())
    return loaded


def test_the_extraction_finds_the_strings_it_should() -> None:
    keys = used_keys()
    # One from each source: the page, a t("...") call, a family from the API's models.
    assert {"tab.hotline", "record.verified", "priority.FLASH", "kind.ground_movement"} <= keys


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_ui_string_is_translated(language: str) -> None:
    keys = used_keys()
    table = strings(language)
    assert sorted(keys - table.keys()) == [], f"{language}: missing translations"
    assert sorted(table.keys() - keys) == [], f"{language}: strings the UI never shows"
    english = strings("en")
    for key, text in table.items():
        assert text.strip(), f"{language}: {key} is empty"
        # A translation keeps every value the UI fills in, and invents none.
        assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(english[key])), (
            f"{language}: {key} placeholders differ from English"
        )


def test_the_selector_offers_every_language() -> None:
    page = (STATIC / "index.html").read_text()
    assert re.findall(r'<option value="(\w\w)">', page)[:5] == LANGUAGES
    assert sorted(p.stem for p in (STATIC / "i18n").glob("*.json")) == sorted(LANGUAGES)
