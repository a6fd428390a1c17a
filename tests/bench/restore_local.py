#!/usr/bin/env python3
"""Local restore benchmark (issue 12): W1 (workloads.md, built by w1.py's build_w1 with a fixed
seed) backed up once into REPO, then alternately
  coffer restore REPO latest OUT
  cp -a REPO/hosts/w1/<snapshot>/tree OUT
  rsync -aH REPO/hosts/w1/<snapshot>/tree/ OUT/
into a fresh OUT each run (the snapshot warm in the page cache for every tool; --drop-caches
empties the cache before each run, which slows everything else on the machine), medians and
ratios printed. coffer's time includes its one
syncfs of OUT's file system; for a fair comparison the others are timed with a `sync -f OUT`
after them too (both figures are printed).

Usage: restore_local.py --coffer build/src/cli/coffer [--files-per-dir 100] [--runs 3]
                        [--work /var/tmp/restore-bench] [--drop-caches]
Standard library only. Run by hand as root, never in CI.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import w1  # noqa: E402


def drop_caches():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def timed(argv, out, with_sync, drop):
    if os.path.exists(out):
        shutil.rmtree(out)
    if drop:
        drop_caches()
    t0 = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    t1 = time.monotonic()
    if with_sync:
        subprocess.run(["sync", "-f", os.path.dirname(out)], check=True)
    return t1 - t0, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--coffer", required=True)
    ap.add_argument("--files-per-dir", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", default="/var/tmp/restore-bench")
    ap.add_argument("--drop-caches", action="store_true")
    a = ap.parse_args()
    coffer = os.path.abspath(a.coffer)
    src, repo, out = (os.path.join(a.work, n) for n in ("src", "repo", "out"))
    if not os.path.isdir(src):
        total = w1.build_w1(src, 1, a.files_per_dir)
        print(f"W1: {10 * 50 * a.files_per_dir} files, {total / 1e6:.1f} MB", flush=True)
    if not os.path.isdir(os.path.join(repo, "hosts", "w1")):
        os.makedirs(repo, exist_ok=True)
        subprocess.run([coffer, "backup", src, repo, "--name", "w1"], check=True, stdout=subprocess.DEVNULL)
    snap = sorted(n for n in os.listdir(os.path.join(repo, "hosts", "w1")) if n[0].isdigit())[-1]
    tree = os.path.join(repo, "hosts", "w1", snap, "tree")
    tools = {
        "coffer": ([coffer, "--no-progress", "restore", repo, "latest", out], False),
        "cp -a": (["cp", "-a", tree, out], True),
        "rsync -aH": (["rsync", "-aH", tree + "/", out + "/"], True),
    }
    times = {k: [] for k in tools}
    synced = {k: [] for k in tools}
    for run in range(a.runs):
        for name, (argv, sync_after) in tools.items():
            t, ts = timed(argv, out, sync_after, a.drop_caches)
            times[name].append(t)
            synced[name].append(ts)
            print(f"run {run + 1} {name}: {t:.2f} s ({ts:.2f} s with the flush)", flush=True)
    med = {k: statistics.median(v) for k, v in synced.items()}
    for name in tools:
        print(f"{name:10} median {statistics.median(times[name]):.2f} s, with flush {med[name]:.2f} s")
    print(f"coffer / cp -a: {med['coffer'] / med['cp -a']:.3f}   coffer / rsync -aH: "
          f"{med['coffer'] / med['rsync -aH']:.3f}  (times with the flush)")
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
