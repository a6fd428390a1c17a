#!/usr/bin/env python3
"""R3, fetch from C (../../../shared/workloads.md): `coffer replica fetch` of a W3-like replica
over the loopback sshd, against `rsync -S` of the replica file and `ssh host cat image >/dev/null`
(the wire floor), alternated, with medians and ratios. Goals: <= 1.2 x the floor, <= 1/2 rsync.

    tests/bench/fetch.py --coffer build-release/src/cli/coffer [--size-gib 4] [--data-mib 650]
                         [--runs 3] [--real-w3]

The replica is made with `coffer replicate` into a local directory that the benchmark's sshd then
serves ("bench:DIR"). The image is a real LUKS2 container (cheap KDF) of --size-gib, sparse;
by default its data area holds --data-mib of random bytes in runs of 1-16 MiB at random places
(ciphertext stands for itself: a fetch neither knows nor cares about the ext4 inside). --real-w3
builds the real W3 instead (W1 in ext4 at the LUKS data offset, as w3.sh does; slow). Every tool
writes a fresh output file each run; C's image is in the page cache for all of them after the
first run. Run by hand as root, never in CI. Standard library only.
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import w2_bench as wb  # noqa: E402

MiB, GiB = wb.MiB, wb.GiB


def make_image(args, work):
    image, key = os.path.join(work, "w3.img"), os.path.join(work, "w3.key")
    size = args.size_gib * GiB
    wb.make_luks(image, size, key)
    if args.real_w3:
        import w1
        mnt = os.path.join(work, "mnt")
        os.makedirs(mnt)
        loop = subprocess.run(["losetup", "--show", "-f", "-o", str(wb.LUKS_HEADER), "--sizelimit",
                               str(size - wb.LUKS_HEADER), image], check=True, capture_output=True,
                              text=True).stdout.strip()
        try:
            subprocess.run(["mkfs.ext4", "-q", "-b", "4096", "-E", "nodiscard", loop], check=True)
            subprocess.run(["mount", "-o", "nodiscard", loop, mnt], check=True)
            w1.build_w1(os.path.join(mnt, "hosts", "a", "s0"), args.seed, args.files_per_dir)
            subprocess.run(["umount", mnt], check=True)
        finally:
            subprocess.run(["umount", mnt], capture_output=True)
            subprocess.run(["losetup", "-d", loop], capture_output=True)
        return image, key
    rng = random.Random(args.seed)
    slots = list(range(wb.LUKS_HEADER // MiB, size // MiB - 16, 16))  # 16 MiB slots
    rng.shuffle(slots)
    left = args.data_mib * MiB
    for i, slot in enumerate(slots):
        if left <= 0:
            break
        run = min(left, rng.randint(1, 16) * MiB)
        wb.fill_random(image, slot * MiB, run, args.seed * 1000 + i)
        left -= run
    return image, key


def allocated(path):
    return os.stat(path).st_blocks * 512


def fetch_coffer(args, sshd, C, out, key):
    cmd = [args.coffer, "replica", "fetch", "--json", f"bench:{C}", out, "--key-file", key,
           "--remote-command", args.coffer]
    text, dt, rss = wb.run_measured(cmd, sshd.env)
    j = [json.loads(l) for l in text.splitlines() if '"type":"fetched"' in l][0]
    return {"s": dt, "received": j["bytes_received"], "rss": rss, "allocated": allocated(out)}


def fetch_rsync(sshd, C, out):
    cmd = ["rsync", "-S", "--stats", "-e", f"ssh -F {sshd.config}", f"bench:{C}/image", out]
    text, dt, rss = wb.run_measured(cmd, sshd.env)
    return {"s": dt, "rss": rss, "allocated": allocated(out)}


def wire_floor(sshd, C):
    cmd = ["sh", "-c", f"ssh -F {sshd.config} bench cat {C}/image >/dev/null"]
    _, dt, _ = wb.run_measured(cmd, sshd.env)
    return {"s": dt}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--coffer", required=True, help="coffer binary (a Release build)")
    ap.add_argument("--work", default="/var/tmp/coffer-bench")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--size-gib", type=int, default=4)
    ap.add_argument("--data-mib", type=int, default=650)
    ap.add_argument("--real-w3", action="store_true")
    ap.add_argument("--files-per-dir", type=int, default=100, help="--real-w3: W1 files per dir")
    args = ap.parse_args()
    args.coffer = os.path.abspath(args.coffer)
    work = os.path.join(args.work, "fetch")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    sshd = wb.Sshd(args.work)
    try:
        image, key = make_image(args, work)
        C = os.path.join(work, "C")
        subprocess.run([args.coffer, "replicate", "-q", image, C, "--key-file", key], check=True,
                       env=dict(os.environ, COFFER_RUNTIME_DIR=os.path.join(work, "run")))
        print(f"R3: a {args.size_gib} GiB sparse LUKS2 image, {allocated(C + '/image') / 1e6:.0f} MB "
              f"allocated, replicated to {C}; {args.runs} runs of each tool, alternated")
        tools = ["coffer fetch", "rsync -S", "ssh cat (floor)"]
        results = {t: [] for t in tools}
        out = os.path.join(work, "out.img")
        for i in range(args.runs):
            for tool in tools[i % 3:] + tools[:i % 3]:
                if os.path.exists(out):
                    os.remove(out)
                if tool == "coffer fetch":
                    r = fetch_coffer(args, sshd, C, out, key)
                    if i == 0:
                        same = subprocess.run(["cmp", "-s", out, image]).returncode == 0
                        print(f"  fetched image identical to B's: {same}")
                        if not same:
                            sys.exit("the fetched image differs")
                elif tool == "rsync -S":
                    r = fetch_rsync(sshd, C, out)
                else:
                    r = wire_floor(sshd, C)
                results[tool].append(r)
                print(f"  run {i + 1} {tool}: {r['s']:.2f} s" +
                      (f", {r['allocated'] / 1e6:.0f} MB allocated" if "allocated" in r else "") +
                      (f", {r['received'] / 1e6:.0f} MB received" if "received" in r else ""))
        med = {t: statistics.median(r["s"] for r in results[t]) for t in tools}
        for t in tools:
            print(f"{t:16} median {med[t]:.2f} s")
        c = med["coffer fetch"]
        print(f"coffer / wire floor: {c / med['ssh cat (floor)']:.2f} (goal <= 1.2); "
              f"coffer / rsync -S: {c / med['rsync -S']:.2f} (goal <= 0.5)")
        print(f"coffer peak RSS {max(r['rss'] for r in results['coffer fetch']):.0f} MiB")
    finally:
        sshd.stop()


if __name__ == "__main__":
    main()
