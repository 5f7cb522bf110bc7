#!/usr/bin/env python3
"""Runs SQL statements on the current ClickHouse engine (chdb, from PyPI) and reports failures.

Input on stdin: JSON {"database": NAME, "statements": [{"label": ..., "sql": ...}, ...]}.
Statements run in order inside one session with NAME as the current database; an INSERT may
carry its rows after `FORMAT JSONEachRow` on the following lines. A statement with
`"result": true` also prints one line `RESULT {"label": ..., "rows": N, "columns": [names]}`
(its answer's row count and column names) when it succeeds.
Prints one line per failure and `N passed, M failed`; exits 1 if any failed, 0 otherwise.
"""
import json
import sys
import tempfile

try:
    from chdb import session as chs
except ImportError:
    print("chdb is not installed: pip install chdb==4.4.0", file=sys.stderr)
    sys.exit(3)

job = json.load(sys.stdin)
db = job["database"]
failures = 0
with tempfile.TemporaryDirectory() as path:
    sess = chs.Session(path)
    sess.query(f"CREATE DATABASE IF NOT EXISTS {db}")
    sess.query(f"USE {db}")
    for st in job["statements"]:
        try:
            if st.get("result"):
                answer = json.loads(sess.query(st["sql"], "JSONCompact").bytes() or b"{}")
                print("RESULT " + json.dumps({
                    "label": st["label"],
                    "rows": answer.get("rows", 0),
                    "columns": [m["name"] for m in answer.get("meta", [])],
                }))
            else:
                sess.query(st["sql"], "CSV")
        except Exception as e:  # chdb raises its own error types
            failures += 1
            print(f"FAILED {st['label']}: {str(e).splitlines()[0] if str(e) else e}")
    print(f"{len(job['statements']) - failures} passed, {failures} failed")
    sess.close()
sys.exit(1 if failures else 0)
