"""`omvarld db upgrade`."""

from __future__ import annotations

import typer

from monitor.cli.common import PLAIN_HELP, fail, out
from monitor.cli.root import app

db_app = typer.Typer(help="Manage the database schema.", **PLAIN_HELP)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Create the tables or bring them to the newest schema."""
    from monitor.db import DatabaseError, describe_database, upgrade

    engine = ctx.obj.engine(upgrade=False)
    try:
        before, after = upgrade(engine)
    except DatabaseError as error:
        fail(str(error))
    where = describe_database(engine)
    if before == after:
        out.print(f"{where}: already at schema {after}", markup=False)
    else:
        out.print(f"{where}: schema {before or 'empty'} → {after}", markup=False)
