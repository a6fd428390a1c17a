#!/usr/bin/env python3
"""W1 benchmark (docs: ../../../shared/workloads.md, results: docs/snapshots.md).

Builds workload W1 with a fixed seed (10 x 50 x 100 files, sizes min(pareto(1.2) * 2000, 20 MB)
of random bytes), starts its own sshd on a loopback port, then alternates
  coffer backup A/ bench:REPO         (push over SSH; the agent on "B" receives)
  rsync -aH --link-dest=PREV -e ssh A/ bench:B/new/
for W1-initial, W1-nochange and W1-change, and prints medians, bytes sent and ratios.

Usage: w1.py --coffer /path/to/coffer [--files-per-dir 100] [--runs 5] [--work /var/tmp/w1]
             [--no-image] [--mode push|pull]
B's side (both tools' destinations) lives on its own ext4 file system in a loop-mounted image,
as the vault does in production: coffer's one syncfs() then flushes B's file system, not every
other writer's dirty data on the machine (--no-image puts B next to A instead).
Standard library only. Run by hand, never in CI; needs root (sshd, mount).
"""
import argparse
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Sshd:
    def __init__(self, base):
        self.base = base
        d = os.path.join(base, "sshd")
        self.home = os.path.join(base, "home")
        os.makedirs(d, exist_ok=True)
        os.makedirs(os.path.join(self.home, ".ssh"), mode=0o700, exist_ok=True)
        os.makedirs("/run/sshd", exist_ok=True)
        hk = os.path.join(d, "host_key")
        uk = os.path.join(self.home, ".ssh", "bench_key")
        for key in (hk, uk):
            if not os.path.exists(key):
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
        shutil.copy(uk + ".pub", os.path.join(d, "authorized_keys"))
        self.port = free_port()
        cfg = os.path.join(d, "sshd_config")
        with open(cfg, "w") as f:
            f.write(f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {hk}\n"
                    f"PidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\n"
                    "StrictModes no\nUsePAM no\nPermitRootLogin yes\nPasswordAuthentication no\n"
                    "UseDNS no\nPrintMotd no\nMaxStartups 64\n")
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", cfg],
                                     stdin=subprocess.DEVNULL, stderr=open(os.path.join(d, "log"), "w"))
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.02)
        pub = open(hk + ".pub").read().split()
        kh = os.path.join(self.home, ".ssh", "known_hosts")
        with open(kh, "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {pub[0]} {pub[1]}\n")
        self.config = os.path.join(self.home, ".ssh", "config")
        with open(self.config, "w") as f:
            f.write(f"Host bench\n  HostName 127.0.0.1\n  Port {self.port}\n  User root\n"
                    f"  IdentityFile {uk}\n  IdentitiesOnly yes\n  UserKnownHostsFile {kh}\n"
                    "  StrictHostKeyChecking yes\n  BatchMode yes\n")
        os.chmod(self.config, 0o600)
        self.env = dict(os.environ, HOME=self.home, SSH_AUTH_SOCK="")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def file_size(rng):
    return min(int(rng.paretovariate(1.2) * 2000), 20_000_000)


def build_w1(root, seed, files_per_dir):
    rng = random.Random(seed)
    total = 0
    for top in range(10):
        for sub in range(50):
            d = os.path.join(root, f"d{top:02d}", f"s{sub:02d}")
            os.makedirs(d, exist_ok=True)
            for i in range(files_per_dir):
                n = file_size(rng)
                with open(os.path.join(d, f"f{i:03d}.bin"), "wb") as f:
                    f.write(rng.randbytes(n))
                total += n
    return total


def apply_change(root, rng, round_no, files_per_dir):
    """1% of the files get 100 random bytes at a random offset; a new dir of 20 x 1 MB files."""
    files = [os.path.join(root, f"d{t:02d}", f"s{s:02d}", f"f{i:03d}.bin")
             for t in range(10) for s in range(50) for i in range(files_per_dir)]
    changed = rng.sample(files, len(files) // 100)
    for p in changed:
        size = os.path.getsize(p)
        with open(p, "r+b") as f:
            f.seek(rng.randrange(0, max(1, size - 100)))
            f.write(rng.randbytes(100))
    d = os.path.join(root, f"new{round_no:02d}")
    os.makedirs(d)
    for i in range(20):
        with open(os.path.join(d, f"n{i:02d}.bin"), "wb") as f:
            f.write(rng.randbytes(1_000_000))


def run_coffer(args, sshd, src, repo):
    if args.mode == "push":  # A starts the agent on B, like the rsync reference
        where = [src + "/", f"bench:{repo}"]
    else:  # B pulls: it starts the agent on A (the nightly direction of the design)
        where = [f"bench:{src}/", repo]
    cmd = [args.coffer, "--json", "backup", *where, "--name", "w1", "--remote-command", args.coffer]
    t0 = time.monotonic()
    r = subprocess.run(cmd, env=sshd.env, capture_output=True, text=True)
    dt = time.monotonic() - t0
    if r.returncode != 0:
        sys.exit(f"coffer failed ({r.returncode}): {r.stderr}")
    res = [json.loads(l) for l in r.stdout.splitlines() if '"type":"backup"' in l][0]
    return dt, res["bytes_to_receiver"], res["bytes_to_sender"]


def run_rsync(sshd, src, dest_root, n):
    prev = os.path.join(dest_root, f"s{n - 1}")
    cmd = ["rsync", "-aH", "--stats", "-e", f"ssh -F {sshd.config}", src + "/", f"bench:{dest_root}/s{n}/"]
    if n > 0:
        cmd.insert(2, f"--link-dest={prev}")
    t0 = time.monotonic()
    r = subprocess.run(cmd, env=sshd.env, capture_output=True, text=True)
    dt = time.monotonic() - t0
    if r.returncode != 0:
        sys.exit(f"rsync failed ({r.returncode}): {r.stderr}")
    sent = int(re.search(r"Total bytes sent: ([\d,]+)", r.stdout).group(1).replace(",", ""))
    recv = int(re.search(r"Total bytes received: ([\d,]+)", r.stdout).group(1).replace(",", ""))
    return dt, sent, recv


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--coffer", required=True)
    ap.add_argument("--work", default="/var/tmp/coffer-w1")
    ap.add_argument("--files-per-dir", type=int, default=100)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-image", action="store_true", help="B on the same file system as A")
    ap.add_argument("--mode", choices=["push", "pull"], default="push",
                    help="coffer direction (rsync always pushes A/ to bench:B/new/)")
    args = ap.parse_args()
    args.coffer = os.path.abspath(args.coffer)
    if os.path.exists(args.work):
        subprocess.run(["rm", "-rf", args.work], check=True)
    src = os.path.join(args.work, "A")
    bdir = os.path.join(args.work, "B")
    os.makedirs(bdir)
    mounted = False
    if not args.no_image:
        img = os.path.join(args.work, "B.img")
        size_mb = max(1024, args.files_per_dir * 40)  # 2 x W1 + changes + metadata
        subprocess.run(["truncate", "-s", f"{size_mb}M", img], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-E", "lazy_itable_init=0,lazy_journal_init=0", img], check=True)
        subprocess.run(["mount", "-o", "loop", img, bdir], check=True)
        mounted = True
    repo = os.path.join(bdir, "coffer")
    rs = os.path.join(bdir, "rsync")
    os.makedirs(repo)
    os.makedirs(rs)
    t0 = time.monotonic()
    total = build_w1(src, args.seed, args.files_per_dir)
    nfiles = 500 * args.files_per_dir
    print(f"W1: {nfiles} files, {total / 1e6:.1f} MB (built in {time.monotonic() - t0:.1f} s); "
          f"coffer {args.mode}, B on {'the same file system' if args.no_image else 'its own ext4 image'}",
          flush=True)
    sshd = Sshd(args.work)
    try:
        results = {}
        rs_n = 0

        def pair(label, i):
            nonlocal rs_n
            order = ["coffer", "rsync"] if i % 2 == 0 else ["rsync", "coffer"]
            for tool in order:
                if tool == "coffer":
                    time.sleep(1.1)  # one snapshot per second: names are UTC seconds
                    out = run_coffer(args, sshd, src, repo)
                else:
                    out = run_rsync(sshd, src, rs, rs_n)
                    rs_n += 1
                results.setdefault((label, tool), []).append(out)

        pair("initial", 0)
        for i in range(args.runs):
            pair("nochange", i)
        rng = random.Random(args.seed + 1000)
        for i in range(args.runs):
            apply_change(src, rng, i, args.files_per_dir)
            pair("change", i)
        print(f"{'workload':<10} {'tool':<7} {'median s':>9} {'A->B bytes':>12} {'B->A bytes':>12}   runs")
        for label in ("initial", "nochange", "change"):
            med = {}
            for tool in ("coffer", "rsync"):
                runs = results[(label, tool)]
                t = statistics.median(r[0] for r in runs)
                sent = statistics.median(r[1] for r in runs)
                recv = statistics.median(r[2] for r in runs)
                med[tool] = (t, sent, recv)
                print(f"{label:<10} {tool:<7} {t:9.3f} {sent:12,.0f} {recv:12,.0f}   "
                      + " ".join(f"{r[0]:.2f}" for r in runs))
            ct, cs, _ = med["coffer"]
            rt, rsent, _ = med["rsync"]
            print(f"{label:<10} ratio   time {ct / rt:.3f}   A->B bytes {cs / rsent:.3f}")
    finally:
        sshd.stop()
        if mounted:
            subprocess.run(["umount", bdir])


if __name__ == "__main__":
    main()
