"""What Alembic revisions share: running a frozen SQL script verbatim, online and offline alike."""

from __future__ import annotations

from pathlib import Path

from alembic import context, op


def frozen_sql(revision_file: str, direction: str) -> str:
    """The frozen script of a revision: ``<direction>.sql`` beside its ``revision.py``.

    Every revision is one folder, ``migrations/versions/NNNN_name/`` (``migrations/README.md``). The revision files
    of 0001-0007 were written when the scripts lived in ``migrations/frozen/``; they are released, so their text
    (and their docstrings naming the old place) never changes: this function is what moved.
    """
    here = Path(revision_file).resolve()
    return (here.parent / f"{direction}.sql").read_text(encoding="utf-8")


def run_sql(script: str) -> None:
    """Run a multi-statement script as it is written (dollar quotes, % signs and colons included).

    Offline (``--sql``) the text goes to the output unchanged, so psql applies exactly what the
    online upgrade runs; online it goes to the server in one simple-protocol call, in the
    migration's transaction.
    """
    if context.is_offline_mode():
        op.get_context().impl.static_output(script.rstrip() + "\n")
        return
    driver_connection = op.get_bind().connection.driver_connection
    with driver_connection.cursor() as cursor:
        cursor.execute(script.encode("utf-8"))


def drop_data_confirmed() -> bool:
    """True when the DBA confirmed dropping operator data: ``alembic -x drop_data=yes downgrade ...``."""
    return context.get_x_argument(as_dictionary=True).get("drop_data", "").lower() in {"yes", "true", "1"}


def confirm_drop_data() -> None:
    """Emit the confirmation as a transaction-local setting the frozen downgrade guard reads."""
    if drop_data_confirmed():
        op.execute("SET LOCAL chat_rollout.drop_data = 'yes'")
