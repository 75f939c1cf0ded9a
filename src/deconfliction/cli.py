"""The `deconfliction` command: set up an area, run the server and the demo, work with zones,
activities and conflicts, export and verify the record, check tracks, from a terminal.

The CLI works on the database directly (like datasette) but acts with an officer's token, so the
party is always the token's: `--token` or DECONFLICTION_TOKEN. Bad input prints one line and
exits with code 2; nothing is written.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import sys
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import BaseModel
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from deconfliction.activities import service as activities
from deconfliction.activities.models import ActivityIn
from deconfliction.agreements.cli import agreements_app, incidents_app, report
from deconfliction.cli_support import (
    DbOption,
    JsonFlag,
    KeyOption,
    TokenOption,
    acting,
    echo_receipt,
    fail,
    guarded,
    open_engine,
    read_json,
    said,
    say_and_show,
    show_list,
    signed_here,
)
from deconfliction.conflicts import service as conflicts
from deconfliction.conflicts.models import ProposedConflict, SideOut
from deconfliction.detect.tactical import (
    TacticalConflict,
    TacticalMinima,
    detect_conflicts,
    read_tracks,
    with_geodesic_dcpa,
)
from deconfliction.errors import Invalid
from deconfliction.hotline.cli import hotline_app
from deconfliction.http import utc_now
from deconfliction.ledger.canonical import canonical_json
from deconfliction.ledger.checkpoint import NoteVerifier
from deconfliction.ledger.signing import generate_private_key, public_key_b64
from deconfliction.ledger.verify import VerifyResult, verify_export
from deconfliction.ops import backup as ops_backup
from deconfliction.parties.models import AreaConfig, OfficerTokensOut
from deconfliction.parties.service import (
    AreaSetUp,
    init_area,
    issue_token,
    officers_with_tokens,
    revoke_tokens,
)
from deconfliction.record import checkpoints, keys, log
from deconfliction.record.ask import ask_activity
from deconfliction.record.keys import encode_private, read_private, trust
from deconfliction.record.service import Statement, run_statement
from deconfliction.store.db import database_url, make_engine, transaction
from deconfliction.tracks import cli as tracks_cli
from deconfliction.zones import service as zones
from deconfliction.zones import transfer
from deconfliction.zones.models import ZoneIn

app = typer.Typer(
    help="Deconfliction of notified activity between parties sharing an area.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
zones_app = typer.Typer(help="Declared zones.", no_args_is_help=True)
activities_app = typer.Typer(help="Notified activities.", no_args_is_help=True)
conflicts_app = typer.Typer(help="Detected conflicts.", no_args_is_help=True)
ledger_app = typer.Typer(
    help="The signed record: export, verify offline, ask, checkpoints.", no_args_is_help=True
)
keys_app = typer.Typer(
    help="Officer keys, certified and revoked by a party root key.", no_args_is_help=True
)
tokens_app = typer.Typer(help="API tokens of officers.", no_args_is_help=True)
tracks_app = typer.Typer(help="Live tracks: tactical conflict detection.", no_args_is_help=True)
for name, sub_app in (
    ("zones", zones_app),
    ("activities", activities_app),
    ("conflicts", conflicts_app),
    ("ledger", ledger_app),
    ("keys", keys_app),
    ("tokens", tokens_app),
    ("tracks", tracks_app),
    ("hotline", hotline_app),
    ("agreements", agreements_app),
    ("incidents", incidents_app),
):
    app.add_typer(sub_app, name=name)
app.command("report")(report)
tracks_app.add_typer(tracks_cli.app)

DEMO_ENCOUNTER = timedelta(hours=8, minutes=11, seconds=30)


@app.command()
def init(
    config: Annotated[Path, typer.Option("--config", help="parties.toml")],
    db: DbOption = None,
    keys_dir: Annotated[
        Path,
        typer.Option(
            "--keys-dir",
            help="Where to write the private keys to hand out (party roots, officers).",
        ),
    ] = Path("keys"),
    server_held_keys: Annotated[
        bool,
        typer.Option(
            "--server-held-keys",
            help="Keep officers' keys on the server, which then signs for "
            "them (marked in every entry). Convenient, but the host could sign in their name.",
        ),
    ] = False,
) -> None:
    """Create the database, parties, officers and keys; print each officer's token once."""

    def run() -> AreaSetUp:
        area = AreaConfig.model_validate(tomllib.loads(config.read_text(encoding="utf-8")))
        engine = open_engine(db)
        with transaction(engine, write=True) as conn:
            return init_area(conn, area, utc_now(), server_held_keys=server_held_keys)

    set_up = guarded(run)
    for officer, token in set_up.tokens.items():
        typer.echo(f"{officer}\t{token}")
    for path in guarded(lambda: set_up.keys.write(keys_dir)):
        typer.echo(f"wrote {path}", err=True)


@tokens_app.command("issue")
def tokens_issue(officer: str, db: DbOption = None) -> None:
    """Issue a new token for an officer (needs access to the database itself)."""

    def run() -> str:
        engine = open_engine(db)
        with transaction(engine, write=True) as conn:
            return issue_token(conn, officer, utc_now())

    typer.echo(guarded(run))


@tokens_app.command("revoke")
def tokens_revoke(officer: str, db: DbOption = None) -> None:
    """Revoke every token of an officer (a lost device, an officer leaving): refused at once,
    open streams end within 30 s (needs access to the database itself)."""

    def run() -> int:
        engine = open_engine(db)
        with transaction(engine, write=True) as conn:
            return revoke_tokens(conn, officer, utc_now())

    count = guarded(run)
    typer.echo(f"revoked {count} token{'' if count == 1 else 's'} of {officer}")


@tokens_app.command("list")
def tokens_list(
    party: Annotated[
        str | None, typer.Option("--party", help="This party's officers only.")
    ] = None,
    db: DbOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Every officer with how many of their tokens still work (neither revoked nor expired)."""

    def run() -> list[OfficerTokensOut]:
        engine = open_engine(db)
        with transaction(engine, write=False) as conn:
            return officers_with_tokens(conn, utc_now(), party)

    officers = guarded(run)
    if as_json:
        typer.echo(json.dumps([o.model_dump() for o in officers], ensure_ascii=False))
        return
    for o in officers:
        typer.echo(f"{o.id}\t{o.party}\t{o.role}\t{o.active_tokens} active")


@app.command()
def serve(db: DbOption = None, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the API on HOST:PORT (docs at /docs)."""
    from deconfliction.api import create_app
    from deconfliction.serving import serve_app

    engine = guarded(lambda: open_engine(db))
    serve_app(create_app(engine), host, port, log_level="info")


@app.command()
def demo(
    db: DbOption = None,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the API after loading the day.")
    ] = True,
    reset: Annotated[
        bool, typer.Option("--reset", help="Start from an empty database (SQLite files only).")
    ] = False,
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """Load the Syria scenario and its simulated day, print a summary, then serve."""
    from deconfliction.sim.demo import load_demo

    url = database_url(db)
    if reset:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or not parsed.database:
            fail("--reset only removes SQLite database files")
        for suffix in ("", "-wal", "-shm"):
            Path(parsed.database + suffix).unlink(missing_ok=True)
    engine = guarded(lambda: open_engine(url))
    summary = guarded(lambda: load_demo(engine, utc_now()))
    typer.echo(summary.render())
    if serve_after:
        from deconfliction.api import create_app
        from deconfliction.serving import serve_app

        typer.echo(f"Serving http://{host}:{port}/ (API docs at /docs). Ctrl-C to stop.")
        # Replay the demo day's tracks shifted so that the T4 crossing happens a minute from now.
        shift = summary.day_start + DEMO_ENCOUNTER - utc_now()
        asgi_app = create_app(engine, demo_replay=(summary.day_start, shift))
        serve_app(asgi_app, host, port, log_level="warning")


@zones_app.command("list")
def zones_list(
    db: DbOption = None,
    token: TokenOption = None,
    as_json: JsonFlag = False,
    include_withdrawn: bool = False,
) -> None:
    """List zones."""

    show_list(
        db,
        token,
        as_json,
        lambda conn, actor: zones.list_zones(conn, actor, include_withdrawn=include_withdrawn),
        lambda z: (
            f"{z.id}\t{z.owner}\t{z.rule}\t{z.status}\t{z.altitude['lower_m']:.0f}-"
            f"{z.altitude['upper_m']:.0f} m\t{z.name}"
        ),
    )


@zones_app.command("declare")
def zones_declare(
    file: Path, db: DbOption = None, token: TokenOption = None, key: KeyOption = None
) -> None:
    """Declare the zone in FILE (JSON, see docs/formats.md)."""
    say_and_show(
        db,
        token,
        key,
        "zone.declare",
        lambda: read_json(file),
        ZoneIn.model_validate,
        zones.declare,
    )


@zones_app.command("import")
def zones_import(
    file: Path,
    format: Annotated[str, typer.Option("--format", help="notam, openair, ed269 or geojson.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; write nothing.")
    ] = False,
    db: DbOption = None,
    token: TokenOption = None,
    key: KeyOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Import the zones of FILE as this officer's party's (re-importing changes nothing).

    Exit code 1 when some records were refused (each listed) and the others imported."""

    def run() -> transfer.ImportOut:
        request = transfer.ImportIn.model_validate(
            {"format": format, "content": file.read_text(encoding="utf-8"), "dry_run": dry_run}
        )
        if dry_run:
            with acting(open_engine(db), token, write=False) as (conn, actor):
                return transfer.import_zones(conn, actor, request, utc_now())
        with acting(open_engine(db), token, write=True) as (conn, actor):
            now = utc_now()
            statement = signed_here(
                Statement("zone.import", body=request.model_dump(mode="json")), actor, key, now
            )
            done: list[transfer.ImportOut] = []

            def use_case(c: Connection) -> tuple[int, dict[str, Any]]:
                done.append(transfer.import_zones(c, actor, request, now))
                return 200, done[0].model_dump(mode="json")

            _, _, receipt = run_statement(
                conn, actor, statement, use_case, lambda _: "zone/import", now
            )
            echo_receipt(receipt)
            return done[0]

    result = guarded(run)
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        for item in result.imported:
            zone = "-" if item.zone is None else str(item.zone)
            typer.echo(f"{item.action}\t{zone}\t{item.source}\t{item.name or item.reason or ''}")
    for refused in result.rejected:
        typer.echo(f"refused: {refused.where}: {refused.reason}", err=True)
    if result.rejected:
        raise typer.Exit(1)


@zones_app.command("export")
def zones_export(
    format: Annotated[str, typer.Option("--format", help="geojson, kml or cot.")] = "geojson",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    db: DbOption = None,
    token: TokenOption = None,
) -> None:
    """The zones in force as GeoJSON, KML (Google Earth) or CoT drawings (TAK)."""

    def run() -> str:
        chosen = transfer.EXPORT_FORMATS.get(format)
        if chosen is None:
            raise Invalid(f"--format {format!r} is not one of geojson, kml, cot")
        with acting(open_engine(db), token, write=False) as (conn, actor):
            found = zones.list_zones(conn, actor)
        return transfer.export_zones(found, chosen, utc_now())

    text = guarded(run)
    if output is None:
        typer.echo(text)
    else:
        guarded(lambda: output.write_text(text + "\n", encoding="utf-8"))


@activities_app.command("list")
def activities_list(
    db: DbOption = None, token: TokenOption = None, as_json: JsonFlag = False
) -> None:
    """List the activities this officer's party may see."""

    show_list(
        db,
        token,
        as_json,
        lambda conn, actor: activities.list_activities(conn, actor, utc_now()),
        lambda a: (
            f"{a.id}\t{a.party}\t{a.kind}\t{a.state}{' LATE' if a.late else ''}\t"
            f"{a.start:%Y-%m-%d %H:%M}-{a.end:%H:%M}Z\t{a.title}"
        ),
    )


@activities_app.command("notify")
def activities_notify(
    file: Path, db: DbOption = None, token: TokenOption = None, key: KeyOption = None
) -> None:
    """Notify the activity in FILE (JSON, see docs/formats.md)."""
    say_and_show(
        db,
        token,
        key,
        "activity.notify",
        lambda: read_json(file),
        ActivityIn.model_validate,
        activities.notify,
    )


@activities_app.command("cancel")
def activities_cancel(
    activity_id: int,
    version: Annotated[
        int,
        typer.Option("--version", help="The version you cancel (see `activities list --json`)."),
    ],
    db: DbOption = None,
    token: TokenOption = None,
    key: KeyOption = None,
) -> None:
    """Cancel one of your party's activities at the version you saw."""

    def run() -> BaseModel:
        return said(
            open_engine(db),
            token,
            key,
            Statement("activity.cancel", target=activity_id, version=version),
            lambda conn, actor, now: activities.cancel(conn, actor, activity_id, version, now),
        )

    typer.echo(guarded(run).model_dump_json(indent=2))


@app.command()
def check(
    file: Path, db: DbOption = None, token: TokenOption = None, as_json: JsonFlag = False
) -> None:
    """Check the activity in FILE against the database without filing it (a dry run)."""

    def run() -> list[ProposedConflict]:
        activity = ActivityIn.model_validate(read_json(file))
        with acting(open_engine(db), token, write=False) as (conn, actor):
            return activities.check(conn, actor, activity, utc_now())

    found = guarded(run)
    if as_json:
        typer.echo(
            json.dumps([f.model_dump(mode="json") for f in found], indent=2, ensure_ascii=False)
        )
        return
    if not found:
        typer.echo("no conflicts")
    for f in found:
        o = f.overlap
        typer.echo(
            f"{f.severity}\t{side_label(f.b)}\t"
            f"volumes {','.join(map(str, f.volumes))}\t{o.lower_m:.0f}-{o.upper_m:.0f} m\t"
            f"{o.start:%Y-%m-%d %H:%M}-{o.end:%H:%M}Z\t{o.distance_m:.0f} m apart"
        )


def side_label(side: SideOut) -> str:
    what = f"zone {side.zone}" if side.zone is not None else f"activity {side.activity}"
    return f"{side.party} {what}" + (f" {side.title}" if side.title else "")


@conflicts_app.command("list")
def conflicts_list(
    db: DbOption = None,
    token: TokenOption = None,
    as_json: JsonFlag = False,
    state: str | None = None,
) -> None:
    """List the conflicts this officer's party may see."""

    show_list(
        db,
        token,
        as_json,
        lambda conn, actor: conflicts.list_conflicts(conn, actor, state=state),
        lambda c: (
            f"{c.id}\t{c.state}\t{c.severity}\t{c.a.party} activity {c.a.activity}\t"
            f"{side_label(c.b)}"
            f"\t{c.overlap.start:%Y-%m-%d %H:%M}-{c.overlap.end:%H:%M}Z"
        ),
    )


@ledger_app.command("export")
def ledger_export(db: DbOption = None) -> None:
    """Write the whole log as JSON Lines (entries and checkpoints) to standard output.

    Signs a checkpoint of the current tree first, so that the export ends on one.
    """

    def run() -> None:
        engine = open_engine(db)
        with transaction(engine, write=True) as conn:
            log.checkpoint(conn, utc_now())
        with transaction(engine, write=False) as conn:
            for record in log.export_records(conn):
                # Canonical form: the verifier hashes each payload as written, no re-encoding.
                sys.stdout.write(canonical_json(record).decode("utf-8") + "\n")

    guarded(run)


@ledger_app.command("trust")
def ledger_trust(db: DbOption = None) -> None:
    """Print the trust anchors (log key, party root keys) as JSON, for `ledger verify`."""

    def run() -> dict[str, Any]:
        with transaction(open_engine(db), write=False) as conn:
            return trust(conn)

    typer.echo(json.dumps(guarded(run), indent=2))


TrustOption = Annotated[
    Path,
    typer.Option(
        "--trust",
        help="trust.json: the log key and the "
        "party root keys you trust (written by `init`, or `ledger trust`).",
    ),
]


@ledger_app.command("verify")
def ledger_verify(
    export: Path,
    trust_file: TrustOption,
    remember: Annotated[
        list[Path] | None,
        typer.Option(
            "--remember", help="A checkpoint you saw before (a file); the export must contain it."
        ),
    ] = None,
    require: Annotated[
        list[str] | None,
        typer.Option("--require", help="A party whose root must have cosigned every checkpoint."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", min=0, help="Processes verifying signatures (default: one per core)."
        ),
    ] = None,
) -> None:
    """Check an export offline: every signature, key certificate, the tree against every
    checkpoint and consistency between them. Exit 1 and name the first bad entry."""

    def run() -> VerifyResult:
        anchors = json.loads(trust_file.read_text(encoding="utf-8"))
        roots = {p: base64.b64decode(k) for p, k in anchors["parties"].items()}
        with export.open("rb") as lines:
            return verify_export(
                lines,
                party_roots=roots,
                log_key=NoteVerifier.from_vkey(anchors["log"]),
                cosigners=[NoteVerifier(p, k) for p, k in roots.items()],
                required_cosigners=require or (),
                remembered=[p.read_text(encoding="utf-8") for p in remember or ()],
                workers=workers,
            )

    result = guarded(run)
    if result.ok:
        typer.echo(
            f"ok: {result.entries} entries, {result.checkpoints} checkpoints, newest of "
            f"size {result.checkpointed_size} signed by {', '.join(result.signers)}"
        )
        return
    typer.echo(
        f"BAD: first bad entry {result.first_bad_index} ({result.reason}): {result.detail}",
        err=True,
    )
    raise typer.Exit(1)


@ledger_app.command("ask")
def ledger_ask(
    export: Path, trust_file: TrustOption, activity: Annotated[int, typer.Option("--activity")]
) -> None:
    """To whom an activity was notified, when, and who acknowledged it when, with proofs."""

    def run() -> dict[str, Any]:
        anchors = json.loads(trust_file.read_text(encoding="utf-8"))
        roots = {p: base64.b64decode(k) for p, k in anchors["parties"].items()}
        with export.open("rb") as lines:
            result = verify_export(
                lines, party_roots=roots, log_key=NoteVerifier.from_vkey(anchors["log"])
            )
        if not result.ok:
            raise Invalid(
                f"the export does not verify (entry {result.first_bad_index}: "
                f"{result.detail}); no answer from it"
            )
        with export.open("rb") as lines:
            return ask_activity((json.loads(line) for line in lines), activity)

    typer.echo(json.dumps(guarded(run), indent=2, ensure_ascii=False))


@ledger_app.command("checkpoint")
def ledger_checkpoint(db: DbOption = None) -> None:
    """Sign a checkpoint of the current tree (if it grew) and print it."""

    def run() -> str:
        with transaction(open_engine(db), write=True) as conn:
            return log.checkpoint(conn, utc_now())

    typer.echo(guarded(run), nl=False)


@ledger_app.command("cosign")
def ledger_cosign(
    root: Annotated[Path, typer.Option("--root", help="Your party's root key file.")],
    db: DbOption = None,
    token: TokenOption = None,
) -> None:
    """Cosign the newest checkpoint for your party after checking it extends the last one your
    party cosigned (a consistency proof)."""

    def run() -> str:
        signer_key = read_private(root)
        with acting(open_engine(db), token, write=True) as (conn, actor):
            return checkpoints.cosign_latest(conn, actor, signer_key, utc_now())

    typer.echo(guarded(run), nl=False)


RootOption = Annotated[Path, typer.Option("--root", help="The party's root key file.")]


@keys_app.command("revoke")
def keys_revoke(
    officer: str, root: RootOption, db: DbOption = None, token: TokenOption = None
) -> None:
    """Revoke every valid key of an officer of your party (a signed entry each)."""

    def run() -> list[str]:
        with acting(open_engine(db), token, write=True) as (conn, actor):
            return keys.revoke(conn, actor.party, read_private(root), officer, utc_now())

    typer.echo("revoked " + ", ".join(guarded(run)))


@keys_app.command("certify")
def keys_certify(
    officer: str, public_key: str, root: RootOption, db: DbOption = None, token: TokenOption = None
) -> None:
    """Certify an officer's new public key (base64) with your party's root key."""

    def run() -> str:
        raw = base64.b64decode(public_key, validate=True)
        with acting(open_engine(db), token, write=True) as (conn, actor):
            return keys.certify(conn, actor.party, read_private(root), officer, raw, utc_now())

    typer.echo(f"certified {guarded(run)}")


@keys_app.command("generate")
def keys_generate(out: Path) -> None:
    """Make a private key file for yourself and print its public key for certification."""
    private = generate_private_key()
    out.write_text(encode_private(private) + "\n", encoding="ascii")
    out.chmod(0o600)
    typer.echo(public_key_b64(private))


@tracks_app.command("detect")
def tracks_detect(
    file: Path,
    horizontal_m: Annotated[float, typer.Option("--horizontal-m")] = 9260.0,
    vertical_m: Annotated[float, typer.Option("--vertical-m")] = 304.8,
    lookahead_s: Annotated[float, typer.Option("--lookahead-s")] = 300.0,
    same_party: Annotated[
        bool, typer.Option("--same-party", help="Also pairs of one party.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Predicted losses of separation among the tracks in FILE (CSV or JSON Lines with
    id,party,lat,lon,alt_m,gs_mps,course_deg,vs_mps at one instant): one line per pair."""

    def run() -> list[TacticalConflict]:
        fmt: Literal["csv", "jsonl"] = "jsonl" if file.suffix in (".jsonl", ".json") else "csv"
        batch = read_tracks(file.read_text(encoding="utf-8"), fmt)
        minima = TacticalMinima(horizontal_m, vertical_m, lookahead_s)
        return with_geodesic_dcpa(batch, detect_conflicts(batch, minima, same_party=same_party))

    for found in guarded(run):
        if as_json:
            typer.echo(json.dumps(dataclasses.asdict(found)))
        else:
            typer.echo(
                f"{found.a}\t{found.b}\tCPA in {found.tcpa_s:.0f} s at "
                f"{found.dcpa_m:.0f} m\tloss from {found.t_in_s:.0f} to {found.t_out_s:.0f} s"
            )


@app.command("backup")
def backup_command(file: Path, db: DbOption = None) -> None:
    """Write a consistent copy of the whole database to FILE while the servers run (SQLite:
    online backup API; PostgreSQL: pg_dump of the schema)."""
    guarded(lambda: ops_backup.backup(make_engine(database_url(db)), file))
    typer.echo(f"backed up to {file}")


@app.command("restore")
def restore_command(
    file: Path,
    yes: Annotated[
        bool, typer.Option("--yes", help="Yes, replace the whole database with the backup.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Replace the whole database with the backup FILE (stop the servers first), then migrate it
    to this version."""
    if not yes:
        fail("restore replaces the whole database: stop the servers, then add --yes")
    guarded(lambda: ops_backup.restore(make_engine(database_url(db)), file))
    typer.echo(f"restored from {file}")


def main() -> None:
    app(prog_name="deconfliction")


if __name__ == "__main__":
    main()
