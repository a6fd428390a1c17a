#!/usr/bin/env python3
"""A/B of two coffer builds on one W3 transition, from the same state every run.

    tests/bench/w3_ab.py OLD/coffer NEW/coffer [--rounds 5] [--block-size 64K]

Why: the runs of one tool vary by +-10 % on a shared machine, and W3 (w3.sh) moves the image
forward with every run, so two builds are never compared on the same work. This applies one
W1-change to the image left by `tests/bench/w3.sh` (run that first), copies C's directory and
B's target state aside, and then, for every round and build, alternating, restores both and
runs one `coffer -v replicate` through the benchmark's sshd. It prints, per build, the median
wall time and the median of every phase `-v` reports (connect, read/hash/upload, commit,
apply...). Run by hand as root, never in CI. Standard library only.
"""
import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import w2_bench as wb  # noqa: E402

PHASE = re.compile(r"^coffer: (.+): ([0-9.]+) s$")


def apply_one_change(work, seed):
    """A new hard-linked snapshot with W1-change inside the image's ext4, as w3.sh does."""
    image, mnt = os.path.join(work, "w3.img"), os.path.join(work, "mnt")
    loop = subprocess.run(["losetup", "--show", "-f", "-o", str(wb.LUKS_HEADER), "--sizelimit",
                           str(4 * wb.GiB - wb.LUKS_HEADER), image], check=True, capture_output=True,
                          text=True).stdout.strip()
    try:
        subprocess.run(["mount", "-o", "nodiscard", loop, mnt], check=True)
        snap = os.path.join(mnt, "hosts", "a")
        n = max(int(x[1:]) for x in os.listdir(snap))
        cur = os.path.join(snap, f"s{n + 1}")
        subprocess.run(["cp", "-al", os.path.join(snap, f"s{n}"), cur], check=True)
        wb.change_snapshot(cur, random.Random(seed + n), 100 + n, 100)
        subprocess.run(["umount", mnt], check=True)
        subprocess.run(["sync"], check=True)
    finally:
        subprocess.run(["umount", mnt], capture_output=True)
        subprocess.run(["losetup", "-d", loop], capture_output=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("builds", nargs=2, help="two coffer binaries")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--block-size", default="64K")
    ap.add_argument("--work", default="/var/tmp/coffer-bench")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    builds = [os.path.abspath(b) for b in args.builds]
    work = os.path.join(args.work, "w3")
    image, key = os.path.join(work, "w3.img"), os.path.join(work, "w3.key")
    dest, state = os.path.join(work, f"C{args.block_size}"), image + ".coffer"
    if not all(os.path.exists(p) for p in (image, key, dest, state)):
        sys.exit(f"no W3 state in {work} for block size {args.block_size}: run tests/bench/w3.sh first")

    apply_one_change(work, args.seed)
    saved = os.path.join(work, "ab-saved")
    shutil.rmtree(saved, ignore_errors=True)
    os.makedirs(saved)
    subprocess.run(["cp", "-a", "--sparse=always", dest, state, saved], check=True)

    sshd = wb.Sshd(args.work)
    runs = {b: [] for b in builds}
    try:
        for r in range(args.rounds):
            for b in (builds if r % 2 == 0 else builds[::-1]):
                shutil.rmtree(dest)
                shutil.rmtree(state)
                subprocess.run(["cp", "-a", "--sparse=always", os.path.join(saved, os.path.basename(dest)),
                                os.path.join(saved, os.path.basename(state)), work], check=True)
                subprocess.run(["sync"], check=True)
                cmd = [b, "-v", "replicate", image, f"bench:{dest}", "--key-file", key,
                       "--remote-command", b, "--block-size", args.block_size]
                t0 = time.monotonic()
                p = subprocess.run(cmd, env=sshd.env, capture_output=True, text=True)
                total = time.monotonic() - t0
                if p.returncode != 0:
                    sys.exit(f"{b} failed ({p.returncode}): {p.stderr[-500:]}")
                phases = {m[1]: float(m[2]) for m in map(PHASE.match, p.stderr.splitlines()) if m}
                runs[b].append({"total": total, **phases})
                print(f"round {r + 1} {b}: {total:.3f} s", flush=True)
    finally:
        sshd.stop()
        shutil.rmtree(saved, ignore_errors=True)

    keys = ["total"] + [k for k in runs[builds[0]][0] if k != "total"]
    print(f"\nW3 A/B, one W1-change from the same state, {args.block_size} blocks, "
          f"{args.rounds} rounds, medians in seconds")
    print(f"{'':32}" + "".join(f"{'A' if i == 0 else 'B':>12}" for i in range(2)) + f"{'B - A':>12}")
    for k in keys:
        med = [statistics.median(x.get(k, 0.0) for x in runs[b]) for b in builds]
        print(f"{k[:32]:32}{med[0]:12.3f}{med[1]:12.3f}{med[1] - med[0]:+12.3f}")
    print(f"A = {builds[0]}\nB = {builds[1]}")


if __name__ == "__main__":
    main()
