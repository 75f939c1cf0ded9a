"""The record on SQLite: officer statements appended with signature verification, per second,
against the raw speed of `cryptography`'s Ed25519 verify on the same signatures; and inclusion
and consistency proofs answered from the stored node table.

Two ways in: a batch append (`append_statements`, BATCH statements per transaction: verified one
by one, replays refused in one query, the tree updated once), and the API's write path
(`perform_write`, one statement per write from WRITERS threads, group-committed), whose use case
here does nothing else, so what is timed is the record's own cost per write.

Run: python -m bench record [N]   (default 20,000 statements; N // 4 through the write path)
"""

from __future__ import annotations

import base64
import statistics
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from deconfliction.ledger.entry import officer_key_name, signing_bytes
from deconfliction.ledger.merkle import verify_consistency, verify_inclusion
from deconfliction.ledger.signing import key_id, public_key_bytes
from deconfliction.parties.models import AreaConfig
from deconfliction.parties.service import authenticate, init_area
from deconfliction.record import log
from deconfliction.record.service import (
    Statement,
    append_statements,
    perform_write,
    sign_statement,
)
from deconfliction.sim import syria
from deconfliction.store import tables as t
from deconfliction.store.db import make_engine, migrate, transaction

BATCH = 500
WRITERS = 8


def main(argv: list[str] | None = None) -> None:
    args = [a for a in (sys.argv[1:] if argv is None else argv) if a.isdigit()]
    count = int(args[0]) if args else 20_000
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        migrate(engine)
        with transaction(engine, write=True) as conn:
            set_up = init_area(
                conn, AreaConfig.model_validate(tomllib.loads(syria.parties_config_text())), now
            )
            actor = authenticate(conn, set_up.tokens["tr-duty"], now)
        private = set_up.keys.officers["tr-duty"]
        kid = key_id(officer_key_name("TR", "tr-duty"), public_key_bytes(private)).hex()
        statements = []
        for i in range(count):
            statement = Statement("activity.acknowledge", target=i)
            signed = sign_statement(
                statement, "TR", "tr-duty", kid, private, now + timedelta(microseconds=i)
            )
            statements.append(Statement(statement.kind, target=i, signed=signed))

        started = time.perf_counter()
        for first in range(0, count, BATCH):
            with transaction(engine, write=True) as conn:
                append_statements(conn, actor, statements[first : first + BATCH], now)
        append_s = time.perf_counter() - started

        writes = [
            Statement(s.kind, target=count + i, signed=sign_statement(
                Statement(s.kind, target=count + i), "TR", "tr-duty", kid, private,
                now + timedelta(microseconds=count + i),
            ))
            for i, s in enumerate(statements[: count // 4])
        ]  # fmt: skip

        def write(statement: Statement) -> None:
            perform_write(
                engine,
                actor,
                None,
                statement,
                lambda _conn: (200, {"id": statement.target}),
                lambda body: f"activity/{body['id']}",
                now,
            )

        started = time.perf_counter()
        with ThreadPoolExecutor(WRITERS) as pool:
            list(pool.map(write, writes))
        write_path_s = time.perf_counter() - started

        public: Ed25519PublicKey = private.public_key()
        with transaction(engine, write=False) as conn:
            entries = [
                log.stored_entry(r)
                for r in conn.execute(
                    t.entries.select().where(t.entries.c.kind == "activity.acknowledge")
                )
            ]
        signatures = [(base64.b64decode(e.signature), signing_bytes(e)) for e in entries[:count]]
        started = time.perf_counter()
        for signature, data in signatures:
            public.verify(signature, data)
        verify_s = time.perf_counter() - started

        with transaction(engine, write=False) as conn:
            size = log.size(conn)
            root = log.root(conn, size)
            inclusion, consistency = [], []
            for i in range(0, size, max(1, size // 200)):
                t0 = time.perf_counter()
                log.inclusion(conn, i, size)
                inclusion.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                old = max(1, i)
                c_proof = log.consistency(conn, old, size)
                assert verify_consistency(old, size, log.root(conn, old), root, c_proof)
                consistency.append(time.perf_counter() - t0)
            proof = log.inclusion(conn, size - 1, size)
            last = conn.execute(t.entries.select().where(t.entries.c.idx == size - 1)).one()
            assert verify_inclusion(bytes.fromhex(last.leaf_hash), size - 1, size, proof, root)
    print(f"| measure ({count:,} statements, SQLite, transactions of {BATCH}) | value |")
    print("|---|---|")
    print(f"| append with signature verification | {count / append_s:,.0f} entries/s |")
    print(f"| raw cryptography Ed25519 verify, same signatures | {count / verify_s:,.0f} /s |")
    print(f"| ratio append / raw verify | {verify_s / append_s:.2f} |")
    print(
        f"| through the write path: {len(writes):,} writes of one statement, {WRITERS} threads, "
        f"group commit | {len(writes) / write_path_s:,.0f} writes/s |"
    )
    print(
        f"| inclusion proof from the node table, size {size:,} (median) | "
        f"{statistics.median(inclusion) * 1e3:.3f} ms |"
    )
    print(
        f"| consistency proof + verify from the node table (median) | "
        f"{statistics.median(consistency) * 1e3:.3f} ms |"
    )


if __name__ == "__main__":
    main()
