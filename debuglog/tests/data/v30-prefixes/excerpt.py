#!/usr/bin/env python3
"""Cuts the lines bmon's tests need, verbatim, out of one capture run's debug.log files.

usage: excerpt.py RUN_DIR OUT_DIR   (reads RUN_DIR/node{0,1}.log and RUN_DIR/truth.json)
"""
import json
import sys

run, out = sys.argv[1:3]
name = run
truth = json.load(open(f"{run}/truth.json"))


def lines(node):
    with open(f"{run}/node{node}.log", encoding="utf-8", errors="surrogateescape") as f:
        return f.read().split("\n")


def first(ls, needle, start=0):
    for i in range(start, len(ls)):
        if needle in ls[i] and "Enqueuing" not in ls[i]:
            return i
    raise SystemExit(f"{name}: no line with {needle!r}")


BENCH = ("Using cached block", "Load block from disk", "Sanity checks", "Fork checks", "transactions:")


def failed_connect(ls, keep, inv):
    """Bench lines of the failed connect, then the invalid-block lines of `inv`."""
    err = first(ls, "Block validation error: ")
    start = max(i for i in range(err) if "Using cached block" in ls[i])
    keep.update(i for i in range(start, err) if any(b in ls[i] for b in BENCH))
    keep.add(err)
    for needle in (f"BlockChecked: block hash={inv}", f"ConnectTip: ConnectBlock {inv}"):
        keep.add(first(ls, needle, err))
    i = err
    for _ in range(2):
        i = first(ls, f"InvalidChainFound: invalid block={inv}", i + 1)
        keep.update((i, i + 1))  # and its `current best=` line


def write(node, ls, keep):
    text = "\n".join(ls[i] for i in sorted(keep)) + "\n"
    open(f"{out}/node{node}.log", "w", encoding="utf-8", errors="surrogateescape").write(text)


inv = truth["invalid"]["hash"]

# node0: mined everything, rejected the low-fee double spend, reorged, had the bad block
# submitted, then mined under a mock time.
ls = lines(0)
keep = set()
commit = first(ls, "CommitTransaction:")
keep.update(range(commit, commit + 6))  # a message spanning 6 lines
keep.add(first(ls, "was not accepted: "))
stale = truth["reorg"]["node0_stale"]
i = first(ls, f"UpdateTip: new best={stale}")
keep.add(i)
for h in [truth["reorg"]["fork"]] + truth["reorg"]["node1_blocks"]:
    i = first(ls, f"UpdateTip: new best={h}", i + 1)
    keep.add(i)
keep.add(first(ls, "- Disconnect block: "))
keep.add(first(ls, f"BlockDisconnected: block hash={stale}"))
failed_connect(ls, keep, inv)
keep.add(first(ls, f"UpdateTip: new best={truth['mocktime_block']}"))
write(0, ls, keep)

# node1: compact blocks from node0, the replacement, the bad block as a compact block.
ls = lines(1)
keep = set()
cb = truth["compact_block"]["hash"]
for needle in (f"Saw new cmpctblock header hash={cb}", f"Successfully reconstructed block {cb}",
               f"UpdateTip: new best={cb}", "replacing mempool tx ",
               f"Saw new cmpctblock header hash={inv}", f"Successfully reconstructed block {inv}"):
    keep.add(first(ls, needle))
failed_connect(ls, keep, inv)
timer = [i for i, l in enumerate(ls) if "FlushStateToDisk: write" in l]
keep.add(timer[0])  # source location `[... BCLog::Timer<..>::Log(..) [with ..]]` when on
write(1, ls, keep)
json.dump(truth, open(f"{out}/truth.json", "w"), indent=1)
open(f"{out}/truth.json", "a").write("\n")
