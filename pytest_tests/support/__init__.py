"""What the tests share, by theme; test modules import helpers from here only (fixtures live in conftest.py).

- ``calls``       the public API as the tests call it: state, history, gates, refusals, arranging a state, the CLI.
- ``samples``     metric samples and healthy timelines written through the public ingestion path.
- ``roles``       the group roles, the test logins, the tables, running SQL as a role.
- ``databases``   creating and dropping databases on the suite's server, fingerprints of schema chat_v11.
- ``catalog``     a comparable picture of everything the project created in a database (drift tests).
- ``migrations``  the head revision, the revision a database is at, the error behind Alembic's.
- ``cluster``     a throwaway PostgreSQL cluster of our own, for crash, failover and hot-standby tests.
"""
