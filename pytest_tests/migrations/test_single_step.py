"""Issue 14, step 4: every step down proven. For every revision N after the first, the catalog after
`upgrade N-1` equals the catalog after `upgrade N` then `downgrade N-1` (tables, columns, constraints, indexes,
functions with their bodies and privileges, types, and the rows of the catalog tables). Parametrized over the
revisions Alembic knows, so a new revision is covered without editing this test."""

from __future__ import annotations

import pytest
from alembic.script import ScriptDirectory

from chat_rollout import migrate
from pytest_tests.support.catalog import assert_same_catalog, catalog_of

SCRIPTS = ScriptDirectory.from_config(migrate.alembic_config())
STEPS = [
    (rev.down_revision, rev.revision)
    for rev in sorted(SCRIPTS.walk_revisions(), key=lambda r: r.revision)
    if rev.down_revision is not None
]


@pytest.mark.parametrize(("previous", "revision"), STEPS, ids=[f"{p}<-{r}" for p, r in STEPS])
def test_one_step_down_restores_the_catalog_of_the_revision_below(empty_db, previous, revision):
    _, url = empty_db
    migrate.upgrade(url, previous)
    before = catalog_of(url)
    migrate.upgrade(url, revision)
    migrate.downgrade(url, previous)
    assert_same_catalog(before, catalog_of(url), f"upgrade {previous}", f"upgrade {revision}, downgrade {previous}")
    # and up again: the revision applies cleanly on top of its own downgrade
    migrate.upgrade(url, revision)
