"""The parties and officers of the test and benchmark areas, in one place so that an officer has
one id everywhere: tests and bench/ name the officers they need and get the area's parties.toml.
"""

from __future__ import annotations

from collections.abc import Sequence

# code: (name, language, kind)
PARTIES = {
    "TR": ("Türkiye", "tr", "participant"),
    "IL": ("Israel", "he", "participant"),
    "SY": ("Syria", "ar", "participant"),
    "AZ": ("Azerbaijan", "az", "mediator"),
    "UNDOF": ("UNDOF", "en", "observer"),
}

# id: (party, name, role)
ROSTER = {
    "tr-duty": ("TR", "TR duty officer", "officer"),
    "tr-cmd": ("TR", "TR watch commander", "commander"),
    "tr-watch": ("TR", "TR watch commander", "commander"),
    "il-duty": ("IL", "IL duty officer", "officer"),
    "il-watch": ("IL", "IL watch commander", "commander"),
    "il-hq": ("IL", "IL headquarters", "commander"),
    "sy-duty": ("SY", "SY duty officer", "officer"),
    "az-med": ("AZ", "AZ mediator", "mediator"),
    "un-obs": ("UNDOF", "UNDOF observer", "observer"),
}


def area_toml(area: str, officers: Sequence[str]) -> str:
    """The parties.toml of an area with these officers (from ROSTER) and their parties, in the
    order of PARTIES; the minima are the defaults, written out."""
    lines = [
        f'area = "{area}"',
        "[minima]",
        "horizontal_m = 9260",
        "vertical_m = 300",
        "time_buffer_s = 600",
    ]
    for code, (name, language, kind) in PARTIES.items():
        members = [o for o in officers if ROSTER[o][0] == code]
        if not members:
            continue
        lines += ["", "[[party]]", f'code = "{code}"', f'name = "{name}"']
        lines += [f'language = "{language}"', f'kind = "{kind}"']
        for officer in members:
            _, officer_name, role = ROSTER[officer]
            lines += ["[[party.officer]]", f'id = "{officer}"', f'name = "{officer_name}"']
            lines.append(f'role = "{role}"')
    return "\n".join(lines) + "\n"
