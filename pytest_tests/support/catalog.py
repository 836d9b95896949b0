"""A comparable picture of everything the project created in one database (drift and migration tests).

``catalog(conn)`` returns plain, JSON-friendly data keyed by object names: schemas, relations (columns,
constraints, indexes, triggers, ACLs, comments), standalone types, functions, extensions, the seed rows of
the configuration tables and the stable part of the rollout state and history. Volatile things (oids,
timestamps, hashes over timestamps) are left out, so two databases built the same way compare equal.
``catalog_diff(a, b)`` is a unified diff of two catalogs ('' when they are equal), for assertion messages.
"""

from __future__ import annotations

import difflib
import json

import psycopg

# user schemas: not the system ones (pg_catalog, pg_toast, pg_temp_N, ...) nor information_schema
_USER_SCHEMA = "n.nspname !~ '^pg_' and n.nspname <> 'information_schema'"


def _not_extension_member(catalog: str, oid: str) -> str:
    """Objects that belong to an extension are the extension's, not the project's."""
    return (
        "not exists (select from pg_catalog.pg_depend as d"
        f" where d.classid = '{catalog}'::regclass and d.objid = {oid} and d.deptype = 'e')"
    )


def _rows(conn: psycopg.Connection, sql: str, params=None) -> list[tuple]:
    return conn.execute(sql, params).fetchall()


def _acl(acl) -> list[str] | None:
    return None if acl is None else sorted(str(item) for item in acl)


def schemas(conn: psycopg.Connection) -> dict:
    rows = _rows(
        conn,
        f"""
        select n.nspname, pg_catalog.pg_get_userbyid(n.nspowner), n.nspacl::text[],
               pg_catalog.obj_description(n.oid, 'pg_namespace')
          from pg_catalog.pg_namespace as n
         where {_USER_SCHEMA}
           and {_not_extension_member("pg_namespace", "n.oid")}
        """,
    )
    return {name: {"owner": owner, "acl": _acl(acl), "comment": comment} for name, owner, acl, comment in rows}


def relations(conn: psycopg.Connection, *, exclude: frozenset[str] = frozenset()) -> dict:
    """Tables, views, sequences, ... of the user schemas, keyed by schema.name (``exclude`` drops some)."""
    rels = _rows(
        conn,
        f"""
        select c.oid, n.nspname || '.' || c.relname, c.relkind::text, pg_catalog.pg_get_userbyid(c.relowner),
               c.relacl::text[], pg_catalog.obj_description(c.oid, 'pg_class'),
               c.relrowsecurity, c.relforcerowsecurity, c.relpersistence::text,
               case when c.relkind in ('v', 'm') then pg_catalog.pg_get_viewdef(c.oid) end,
               case when c.relkind = 'p' then pg_catalog.pg_get_partkeydef(c.oid) end
          from pg_catalog.pg_class as c
          join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
         where {_USER_SCHEMA}
           and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
           and {_not_extension_member("pg_class", "c.oid")}
        """,
    )
    out = {}
    for oid, name, kind, owner, acl, comment, rls, force_rls, persistence, viewdef, partkey in rels:
        if name in exclude:
            continue
        out[name] = {
            "kind": kind,
            "owner": owner,
            "acl": _acl(acl),
            "comment": comment,
            "row_security": [rls, force_rls],
            "persistence": persistence,
            "view_definition": viewdef,
            "partition_key": partkey,
            "sequence": _one(
                conn,
                """
                select pg_catalog.jsonb_build_array(pg_catalog.format_type(q.seqtypid, null), q.seqstart,
                       q.seqincrement, q.seqmin, q.seqmax, q.seqcache, q.seqcycle)
                  from pg_catalog.pg_sequence as q where q.seqrelid = %s
                """,
                (oid,),
            ),
            "partition_of": _one(
                conn,
                "select i.inhparent::regclass::text from pg_catalog.pg_inherits as i where i.inhrelid = %s",
                (oid,),
            ),
            "columns": {
                col: {
                    "position": pos,
                    "type": typ,
                    "not_null": notnull,
                    "default": default,
                    "identity": identity or None,
                    "generated": generated or None,
                    "acl": _acl(colacl),
                    "comment": colcomment,
                }
                for col, pos, typ, notnull, default, identity, generated, colacl, colcomment in _rows(
                    conn,
                    """
                    select a.attname, a.attnum, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
                           pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), a.attidentity::text,
                           a.attgenerated::text, a.attacl::text[], pg_catalog.col_description(a.attrelid, a.attnum)
                      from pg_catalog.pg_attribute as a
                      left join pg_catalog.pg_attrdef as ad on ad.adrelid = a.attrelid and ad.adnum = a.attnum
                     where a.attrelid = %s and a.attnum > 0 and not a.attisdropped
                    """,
                    (oid,),
                )
            },
            "constraints": {
                con: {"definition": definition, "comment": concomment}
                for con, definition, concomment in _rows(
                    conn,
                    """
                    select co.conname, pg_catalog.pg_get_constraintdef(co.oid),
                           pg_catalog.obj_description(co.oid, 'pg_constraint')
                      from pg_catalog.pg_constraint as co
                     where co.conrelid = %s
                    """,
                    (oid,),
                )
            },
            "indexes": {
                idx: definition
                for idx, definition in _rows(
                    conn,
                    """
                    select ic.relname, pg_catalog.pg_get_indexdef(i.indexrelid)
                      from pg_catalog.pg_index as i
                      join pg_catalog.pg_class as ic on ic.oid = i.indexrelid
                     where i.indrelid = %s
                    """,
                    (oid,),
                )
            },
            "triggers": {
                trg: {"definition": definition, "enabled": enabled}
                for trg, definition, enabled in _rows(
                    conn,
                    """
                    select t.tgname, pg_catalog.pg_get_triggerdef(t.oid), t.tgenabled::text
                      from pg_catalog.pg_trigger as t
                     where t.tgrelid = %s and not t.tgisinternal
                    """,
                    (oid,),
                )
            },
            "policies": {
                pol: [cmd, permissive, roles, qual, check]
                for pol, cmd, permissive, roles, qual, check in _rows(
                    conn,
                    """
                    select p.polname, p.polcmd::text, p.polpermissive,
                           array(select pg_catalog.pg_get_userbyid(r) from unnest(p.polroles) as r order by 1),
                           pg_catalog.pg_get_expr(p.polqual, p.polrelid),
                           pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)
                      from pg_catalog.pg_policy as p
                     where p.polrelid = %s
                    """,
                    (oid,),
                )
            },
        }
    return out


def _one(conn: psycopg.Connection, sql: str, params) -> object:
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


def types(conn: psycopg.Connection) -> dict:
    """Standalone types (composite, enum, domain, range) of the user schemas: not a table's row type."""
    rows = _rows(
        conn,
        f"""
        select n.nspname || '.' || t.typname, t.typtype::text, pg_catalog.pg_get_userbyid(t.typowner),
               t.typacl::text[], pg_catalog.obj_description(t.oid, 'pg_type'),
               case when t.typtype = 'd' then pg_catalog.format_type(t.typbasetype, t.typtypmod) end,
               t.typnotnull, t.typdefault,
               array(select e.enumlabel::text from pg_catalog.pg_enum as e
                      where e.enumtypid = t.oid order by e.enumsortorder),
               array(select a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
                       from pg_catalog.pg_attribute as a
                      where a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped
                      order by a.attnum),
               array(select co.conname || ' ' || pg_catalog.pg_get_constraintdef(co.oid)
                       from pg_catalog.pg_constraint as co where co.contypid = t.oid order by 1)
          from pg_catalog.pg_type as t
          join pg_catalog.pg_namespace as n on n.oid = t.typnamespace
         where {_USER_SCHEMA}
           and {_not_extension_member("pg_type", "t.oid")}
           and (t.typtype in ('e', 'd', 'r', 'm')
                or (t.typtype = 'c'
                    and (select c.relkind from pg_catalog.pg_class as c where c.oid = t.typrelid) = 'c'))
        """,
    )
    return {
        name: {
            "kind": kind,
            "owner": owner,
            "acl": _acl(acl),
            "comment": comment,
            "base_type": base,
            "not_null": notnull,
            "default": default,
            "labels": labels,
            "attributes": attributes,
            "constraints": constraints,
        }
        for name, kind, owner, acl, comment, base, notnull, default, labels, attributes, constraints in rows
    }


def functions(conn: psycopg.Connection) -> dict:
    """Functions and procedures of the user schemas, keyed by schema.name(identity arguments)."""
    rows = _rows(
        conn,
        f"""
        select n.nspname || '.' || p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')',
               pg_catalog.pg_get_function_arguments(p.oid), pg_catalog.pg_get_function_result(p.oid),
               p.prokind::text, l.lanname, p.provolatile::text, p.proparallel::text, p.proisstrict,
               p.prosecdef, p.proleakproof, p.proconfig, pg_catalog.pg_get_userbyid(p.proowner),
               p.proacl::text[], pg_catalog.obj_description(p.oid, 'pg_proc'), p.prosrc
          from pg_catalog.pg_proc as p
          join pg_catalog.pg_namespace as n on n.oid = p.pronamespace
          join pg_catalog.pg_language as l on l.oid = p.prolang
         where {_USER_SCHEMA}
           and {_not_extension_member("pg_proc", "p.oid")}
        """,
    )
    keys = (
        "arguments", "result", "kind", "language", "volatility", "parallel", "strict",
        "security_definer", "leakproof", "config", "owner", "acl", "comment", "source",
    )  # fmt: skip
    out = {}
    for name, *values in rows:
        entry = dict(zip(keys, values, strict=True))
        entry["acl"] = _acl(entry["acl"])
        entry["source"] = entry["source"].splitlines()  # a diff line by line, not one long string
        out[name] = entry
    return out


def extensions(conn: psycopg.Connection) -> dict:
    return {
        name: {"version": version, "schema": schema}
        for name, version, schema in _rows(
            conn,
            """
            select e.extname, e.extversion, n.nspname
              from pg_catalog.pg_extension as e join pg_catalog.pg_namespace as n on n.oid = e.extnamespace
            """,
        )
    }


def _table_exists(conn: psycopg.Connection, name: str) -> bool:
    return _one(conn, "select pg_catalog.to_regclass(%s) is not null", (name,))


def data(conn: psycopg.Connection) -> dict:
    """Seed rows of the configuration tables and the stable columns of the initial state and history."""
    out: dict = {}
    if _table_exists(conn, "chat_v11.stage"):
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        out["chat_v11.stage"] = [
            {k: str(v) for k, v in row.items()}
            for row in cur.execute("select * from chat_v11.stage order by ordinal").fetchall()
        ]
    if _table_exists(conn, "chat_v11.metric"):
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        out["chat_v11.metric"] = [
            {k: None if v is None else str(v) for k, v in row.items()}
            for row in cur.execute("select * from chat_v11.metric order by ordinal").fetchall()
        ]
    if _table_exists(conn, "chat_v11.policy"):
        out["chat_v11.policy"] = {
            key: value for key, value in _rows(conn, "select key, value from chat_v11.policy order by key")
        }
    if _table_exists(conn, "chat_v11.rollout_state"):
        out["chat_v11.rollout_state"] = [
            list(row)
            for row in _rows(
                conn,
                """
                select stage, kill_switch, promotion_frozen, reason, changed_by, actor, version
                  from chat_v11.rollout_state
                """,
            )
        ]
    if _table_exists(conn, "chat_v11.rollout_history"):
        out["chat_v11.rollout_history"] = [
            list(row)
            for row in _rows(
                conn,
                """
                select version, changed_by, actor, action, from_stage, to_stage, from_kill_switch, to_kill_switch,
                       promotion_frozen, reason, note, gate_snapshot, incident_id
                  from chat_v11.rollout_history order by version
                """,
            )
        ]
    return out


def catalog(conn: psycopg.Connection, *, exclude: frozenset[str] = frozenset({"public.alembic_version"})) -> dict:
    """Everything the project created in the database of ``conn``, as comparable data.

    ``exclude`` names relations left out (by default Alembic's own ``public.alembic_version``).
    """
    return {
        "schemas": schemas(conn),
        "relations": relations(conn, exclude=exclude),
        "types": types(conn),
        "functions": functions(conn),
        "extensions": extensions(conn),
        "data": data(conn),
    }


def catalog_of(url: str, **kwargs) -> dict:
    with psycopg.connect(url, autocommit=True) as conn:
        return catalog(conn, **kwargs)


def _lines(obj, path: str = "") -> list[str]:
    """One line per leaf, prefixed by its path, so every line of a diff says which object it is about."""
    if isinstance(obj, dict):
        if not obj:
            return [f"{path} = {{}}\n"]
        return [line for key in sorted(obj) for line in _lines(obj[key], f"{path}/{key}" if path else str(key))]
    if isinstance(obj, list):
        if path.endswith("/source"):  # function bodies: one line per source line, unnumbered
            return [f"{path} | {line}\n" for line in obj]
        if all(not isinstance(item, dict | list) for item in obj):
            return [f"{path} = {json.dumps(obj, default=str)}\n"]
        return [line for i, item in enumerate(obj) for line in _lines(item, f"{path}[{i}]")]
    return [f"{path} = {json.dumps(obj, default=str, ensure_ascii=False)}\n"]


def catalog_diff(a: dict, b: dict, a_label: str = "a", b_label: str = "b") -> str:
    """A unified diff of two catalogs, '' when they are equal."""
    if a == b:
        return ""
    return "".join(difflib.unified_diff(_lines(a), _lines(b), fromfile=a_label, tofile=b_label, n=1))


def assert_same_catalog(a: dict, b: dict, a_label: str = "a", b_label: str = "b") -> None:
    diff = catalog_diff(a, b, a_label, b_label)
    assert not diff, f"catalogs differ ({a_label} vs {b_label}):\n{diff}"
