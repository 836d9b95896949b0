"""Conformance vectors of the canary assignment (SPEC 8): writes ``docs/assignment-vectors.json``.

    python tools/assignment_vectors.py            # rewrite docs/assignment-vectors.json
    python tools/assignment_vectors.py --check    # exit 1 (and say why) when the file differs from what it would write
    python tools/assignment_vectors.py --output FILE

No server: the buckets come from ``chat_rollout.client.assignment`` (the Python twin of SQL's
``chat_get_v11_assignment``). The tests check SQL and Python against the file
(``pytest_tests/client/test_assignment_vectors.py``), so a change of the function, the salt or the stages shows up
as a diff of this file; the output is deterministic (no clock, no randomness: the boundary keys are searched in the
order ``user-0``, ``user-1``, ...).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from decimal import Decimal
from pathlib import Path

from chat_rollout import PROJECT_ROOT as ROOT
from chat_rollout.client.assignment import BUCKETS, DEFAULT_SALT, bucket, in_canary

OUTPUT = ROOT / "docs" / "assignment-vectors.json"

#: The default stage catalog (sql/0100_table_stage.sql): stage, traffic_percent (numeric(5,2)), in promotion order.
STAGES: list[tuple[str, Decimal]] = [
    ("off", Decimal("0")),
    ("canary_1", Decimal("1")),
    ("canary_5", Decimal("5")),
    ("canary_25", Decimal("25")),
    ("canary_50", Decimal("50")),
    ("full", Decimal("100")),
]

#: A non-default salt for the second section (a re-randomisation, set with chat_set_v11_policy at stage off).
OTHER_SALT = "chat_v11_reshuffle_2026"

#: Each stage boundary: the last bucket in (threshold - 1) and the first out (threshold), plus both ends.
BOUNDARY_BUCKETS = sorted(
    {0, BUCKETS - 1} | {b for _, p in STAGES if 0 < p < 100 for b in (int(p * 100) - 1, int(p * 100))}
)
BOUNDARY_PREFIX = "user-"
HEX_MAX_BYTES = 256  # utf8_hex is given for keys up to this size (the long keys give their sha256 instead)

#: (name, key, what it shows): hand-picked keys; the boundary keys are searched and appended.
KEYS: list[tuple[str, str, str]] = [
    ("ascii", "user-42", "plain ASCII"),
    ("ascii_uuid", "3f2504e0-4f89-41d3-9a0c-0305e82c3301", "a UUID as text (lower case)"),
    (
        "ascii_uuid_upper",
        "3F2504E0-4F89-41D3-9A0C-0305E82C3301",
        "the same UUID in upper case: another user (no case folding)",
    ),
    ("ascii_email", "alice@example.com", "an e-mail address"),
    ("digits", "1234567890", "digits only"),
    ("cyrillic", "пользователь-7", "Cyrillic (2-byte UTF-8)"),
    ("cjk", "用户七号", "CJK (3-byte UTF-8)"),
    ("emoji", "user-🚀-\U0001f600", "emoji outside the BMP (4-byte UTF-8, a surrogate pair in UTF-16)"),
    ("precomposed", "caf\u00e9", "é precomposed (U+00E9, NFC)"),
    ("combining", "cafe\u0301", "e + combining acute (U+0065 U+0301, NFD): another user than 'precomposed'"),
    ("empty", "", "the empty string: a valid key (null is refused, RO011)"),
    ("space", " ", "one space"),
    ("whitespace", " \t\n\r ", "whitespace only"),
    ("leading_space", " user-42", "a leading space: not trimmed"),
    ("trailing_space", "user-42 ", "a trailing space: not trimmed"),
    ("quote_backslash", 'o\'brien "x" \\ back\\slash', "single and double quotes and backslashes"),
    ("colon", "a:b", "a colon, the salt's separator: salt 'chat_v11', key 'a:b' hashes 'chat_v11:a:b'"),
    ("sql_like", "'); drop table users; --", "SQL-looking text, a parameter like any other"),
    ("nbsp", "user\u00a042", "a no-break space (U+00A0), not an ASCII space"),
    ("zero_width", "user\u200b42", "a zero-width space (U+200B) inside"),
    ("rtl", "משתמש-42", "Hebrew (right-to-left)"),
    ("long_ascii", "0123456789" * 1000, "10,000 ASCII characters"),
    ("long_cyrillic", "ключ" * 2500, "10,000 Cyrillic characters (20,000 UTF-8 bytes)"),
]

#: The keys also given under OTHER_SALT.
OTHER_SALT_KEYS = ["ascii", "cyrillic", "cjk", "emoji", "empty", "long_ascii"]


def boundary_keys() -> list[tuple[str, str, str]]:
    """For each boundary bucket, the first ``user-<n>`` (n = 0, 1, ...) with that bucket under the default salt."""
    wanted = set(BOUNDARY_BUCKETS)
    found: dict[int, str] = {}
    n = 0
    while wanted - found.keys():
        key = f"{BOUNDARY_PREFIX}{n}"
        b = bucket(DEFAULT_SALT, key)
        if b in wanted and b not in found:
            found[b] = key
        n += 1
    out = []
    for b in BOUNDARY_BUCKETS:
        what = f"bucket {b}"
        for stage, p in STAGES:
            threshold = int(p * 100)
            if 0 < p < 100 and b == threshold - 1:
                what += f", the last bucket in at {stage} (bucket < {threshold})"
            elif 0 < p < 100 and b == threshold:
                what += f", the first bucket out at {stage} (bucket < {threshold})"
        if b in (0, BUCKETS - 1):
            what += (
                ", the first bucket (in at every stage above 0 %)" if b == 0 else ", the last bucket (in at 100 % only)"
            )
        out.append((f"bucket_{b}", found[b], what))
    return out


def vector(salt: str, name: str, key: str, what: str) -> dict:
    data = f"{salt}:{key}".encode()
    b = bucket(salt, key)
    out: dict = {"name": name, "what": what, "key": key, "chars": len(key), "utf8_bytes": len(key.encode())}
    if len(key.encode()) <= HEX_MAX_BYTES:
        out["utf8_hex"] = key.encode().hex()
    else:
        out["utf8_sha256"] = hashlib.sha256(key.encode()).hexdigest()
    out["hash_prefix_hex"] = hashlib.sha256(data).digest()[:4].hex()
    out["bucket"] = b
    out["in"] = {stage: in_canary(b, p, False) for stage, p in STAGES}
    return out


def build() -> dict:
    keys = KEYS + boundary_keys()
    names = [n for n, _, _ in keys]
    if len(set(names)) != len(names) or len({k for _, k, _ in keys}) != len(keys):
        raise SystemExit("assignment_vectors: duplicate vector name or key")
    by_name = {n: (n, k, w) for n, k, w in keys}
    return {
        "about": "Conformance vectors of the canary assignment (SPEC 8). Generated by tools/assignment_vectors.py; "
        "do not edit by hand. Checked against SQL (public.chat_get_v11_assignment) and Python "
        "(chat_rollout.client) by pytest_tests/client/test_assignment_vectors.py.",
        "function": {
            "bucket": "int.from_bytes(sha256(utf8(salt + ':' + key))[0:4], 'big') % 10000: the first 4 bytes of "
            "the SHA-256 of the UTF-8 bytes of salt, ':' and key, read as an unsigned big-endian "
            "integer, mod 10000",
            "in_canary": "not kill_switch and bucket < traffic_percent * 100",
            "buckets": BUCKETS,
            "normalization": "none: the key is hashed exactly as given (no trimming, no case folding, no Unicode "
            "normalization; 'precomposed' and 'combining' are two users)",
            "kill_switch": "with the kill switch on, nobody is in the canary at any stage (in = false)",
            "not_keys": "null is refused by SQL (SQLSTATE RO011); a lone surrogate cannot be encoded as UTF-8 "
            "(Python: ValueError) and U+0000 cannot be held in a PostgreSQL text value",
            "hash_prefix_hex": "the first 4 bytes of that SHA-256, in hex, before the mod",
            "utf8_hex": "the key's UTF-8 bytes in hex, for keys up to 256 bytes (longer keys: utf8_sha256)",
        },
        "salt": DEFAULT_SALT,
        "stages": [
            {"stage": s, "traffic_percent": int(p) if p == int(p) else float(p), "threshold": int(p * 100)}
            for s, p in STAGES
        ],
        "vectors": [vector(DEFAULT_SALT, *k) for k in keys],
        "other_salts": [
            {
                "salt": OTHER_SALT,
                "about": "the same function with another salt (policy assignment_salt, settable only at stage off): "
                "other buckets",
                "vectors": [vector(OTHER_SALT, *by_name[n]) for n in OTHER_SALT_KEYS],
            }
        ],
    }


def render(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="exit 1 when the file differs from what would be written")
    p.add_argument("--output", type=Path, default=OUTPUT, help=f"default: {OUTPUT.relative_to(ROOT)}")
    args = p.parse_args(argv)
    text = render(build())
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
        if current != text:
            print(f"{args.output} is out of date: run python tools/assignment_vectors.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
