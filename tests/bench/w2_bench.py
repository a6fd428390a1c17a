#!/usr/bin/env python3
"""Replication benchmarks W2, W3 and Scale (../../../shared/workloads.md; results: docs/replication.md).

Started by w2.sh, w3.sh and scale.sh. Each builds its workload with a fixed seed, starts its own
sshd on a loopback port, and alternates
  coffer replicate IMAGE bench:C            (the helper runs on "C" through sshd)
  rsync -I --inplace --no-whole-file -e ssh IMAGE bench:R
over the same transitions of the same image, then prints medians, bytes sent and ratios.

Images are real LUKS2 containers (cryptsetup luksFormat with a cheap KDF, so unlocking the volume
key costs ~0.1 s): W2 fills the data area with random bytes (ciphertext stands for itself); W3
puts a plain ext4 at the LUKS data offset through a loop device, because this machine has no
device-mapper (the 4 KiB change pattern of ext4 through dm-crypt with 4 KiB sectors is the same).
Run by hand as root, never in CI. Standard library only.
"""
import argparse
import hashlib
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

MiB = 1 << 20
GiB = 1 << 30
LUKS_HEADER = 16 * MiB
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Sshd:
    """A real sshd on 127.0.0.1 with its own keys; clients use the alias 'bench'."""

    def __init__(self, base):
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
                    "UseDNS no\nPrintMotd no\nMaxStartups 64\n"
                    # bash sources ~/.bashrc for commands run by sshd unless it is a nested shell;
                    # root's .bashrc here runs `pyenv init` (2.2 s per command, for both tools).
                    "SetEnv SHLVL=1\n")
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


def run_measured(cmd, env):
    """Runs cmd; returns (stdout, seconds, peak RSS of the local process in MiB, via wait4)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    dt = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({p.returncode}): {err.decode(errors='replace')}")
    return out.decode(), dt, usage.ru_maxrss / 1024


def make_luks(path, size, key):
    with open(key, "wb") as f:
        f.write(random.Random(7).randbytes(64))
    with open(path, "wb") as f:
        f.truncate(size)
    subprocess.run(["cryptsetup", "luksFormat", "-q", "--type", "luks2", "--sector-size", "4096",
                    "--pbkdf", "argon2id", "--pbkdf-memory", "32768", "--pbkdf-force-iterations", "4",
                    "--pbkdf-parallel", "1", "--key-file", key, path], check=True)


def fill_random(path, offset, length, seed):
    """Deterministic random bytes (AES-CTR of zeros under a key made from the seed): fast."""
    key = hashlib.sha256(f"coffer-bench-{seed}".encode()).hexdigest()
    gen = subprocess.Popen(["openssl", "enc", "-aes-128-ctr", "-nosalt", "-K", key[:32], "-iv", key[32:],
                            "-in", "/dev/zero"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    with open(path, "r+b") as f:
        f.seek(offset)
        left = length
        while left:
            chunk = gen.stdout.read(min(left, 8 * MiB))
            f.write(chunk)
            left -= len(chunk)
    gen.kill()
    gen.wait()


def scatter(path, lo, hi, count, seed):
    """Rewrites `count` distinct random 4 KiB blocks in [lo, hi) with random bytes."""
    rng = random.Random(seed)
    blocks = rng.sample(range(lo // 4096, hi // 4096), count)
    with open(path, "r+b") as f:
        for b in sorted(blocks):
            f.seek(b * 4096)
            f.write(rng.randbytes(4096))


def coffer(args, sshd, image, key, dest, block_size):
    cmd = [args.coffer, "replicate", "--json", image, f"bench:{dest}", "--key-file", key,
           "--remote-command", args.coffer, "--block-size", block_size]
    out, dt, rss = run_measured(cmd, sshd.env)
    j = [json.loads(l) for l in out.splitlines() if '"type":"replicated"' in l][0]
    return {"s": dt, "sent": j["bytes_sent"], "changed": j["bytes_changed"],
            "blocks": j["blocks_changed"], "rss": rss, "bs": j["block_size"]}


def rsync(sshd, image, dest, far=False):
    opts = ["-I", "--sparse", "--times", "--block-size=65536"] if far else ["-I", "--inplace", "--no-whole-file"]
    cmd = ["rsync", *opts, "--stats", "-e", f"ssh -F {sshd.config}", image, f"bench:{dest}"]
    out, dt, rss = run_measured(cmd, sshd.env)
    sent = int(re.search(r"Total bytes sent: ([\d,]+)", out).group(1).replace(",", ""))
    return {"s": dt, "sent": sent, "rss": rss}


def sparse_copy(src, dst):
    subprocess.run(["cp", "--sparse=always", src, dst], check=True)


def report(title, results, reference="rsync --inplace", goal_time=None, goal_bytes=None):
    print(f"\n{title}")
    print(f"{'tool':<22} {'median s':>9} {'median sent':>14} {'changed':>12} {'peak MiB':>9}   runs (s)")
    med = {}
    for tool, runs in results.items():
        t = statistics.median(r["s"] for r in runs)
        sent = statistics.median(r["sent"] for r in runs)
        changed = statistics.median(r.get("changed", 0) for r in runs)
        rss = max(r["rss"] for r in runs)
        med[tool] = (t, sent, changed)
        print(f"{tool:<22} {t:9.3f} {sent:14,.0f} {changed:12,.0f} {rss:9.1f}   "
              + " ".join(f"{r['s']:.2f}" for r in runs))
    if reference in med:
        rt, rsent, _ = med[reference]
        for tool, (t, sent, changed) in med.items():
            if tool == reference or not tool.startswith("coffer"):
                continue
            line = f"{tool:<22} time ratio {t / rt:.3f}   bytes ratio {sent / rsent:.3f}"
            if goal_time:
                line += f"   time goal <= {goal_time:.3f}: {'met' if t / rt <= goal_time else 'MISSED'}"
            if goal_bytes == "changed":
                limit = 1.1 * changed + 1e6
                line += f"   bytes goal <= {limit:,.0f}: {'met' if sent <= limit else 'MISSED'}"
            elif goal_bytes == "rsync":
                line += f"   bytes goal <= rsync: {'met' if sent <= rsent else 'MISSED'}"
            print(line)
    return med


def fresh_work(args, name):
    work = os.path.join(args.work, name)
    if os.path.exists(work):
        subprocess.run(["rm", "-rf", work], check=True)
    os.makedirs(work)
    return work


def w2(args, sshd):
    work = fresh_work(args, "w2")
    size = args.size_gib * GiB
    image, key = os.path.join(work, "w2.img"), os.path.join(work, "w2.key")
    t0 = time.monotonic()
    make_luks(image, size, key)
    fill_random(image, LUKS_HEADER, size - LUKS_HEADER, args.seed)
    nblocks = size // 4096 // 100
    print(f"W2: {size / GiB:.0f} GiB image of random bytes (LUKS2 header + data), {nblocks} changed 4 KiB "
          f"blocks per run (built in {time.monotonic() - t0:.1f} s)")
    targets = {f"coffer {bs}": (bs, os.path.join(work, f"C{bs}")) for bs in args.block_sizes}
    replica = os.path.join(work, "R.img")
    for name, (bs, dest) in targets.items():
        r = coffer(args, sshd, image, key, dest, bs)
        print(f"initial {name}: {r['s']:.2f} s, sent {r['sent']:,} bytes")
    sparse_copy(image, replica)
    results = {}
    tools = list(targets) + ["rsync --inplace"] + (["rsync far form"] if args.far else [])
    if args.far:
        sparse_copy(image, os.path.join(work, "F.img"))
    for i in range(args.runs):
        scatter(image, LUKS_HEADER, size, nblocks, args.seed + 100 + i)
        order = tools[i % len(tools):] + tools[:i % len(tools)]
        for tool in order:
            if tool in targets:
                bs, dest = targets[tool]
                r = coffer(args, sshd, image, key, dest, bs)
            elif tool == "rsync far form":
                r = rsync(sshd, image, os.path.join(work, "F.img"), far=True)
            else:
                r = rsync(sshd, image, replica)
            results.setdefault(tool, []).append(r)
    report(f"W2 ({args.runs} runs, alternating)", results, goal_time=1 / 3, goal_bytes="changed")
    for tool in targets:
        bs = targets[tool][0]
        if bs.upper() in ("4K", "4096"):
            sent = statistics.median(r["sent"] for r in results[tool])
            print(f"{tool}: {'met' if sent <= 25e6 else 'MISSED'} the 4 KiB goal of <= 25 MB on the wire")


def w3(args, sshd):
    import w1
    work = fresh_work(args, "w3")
    size = 4 * GiB
    image, key = os.path.join(work, "w3.img"), os.path.join(work, "w3.key")
    mnt = os.path.join(work, "mnt")
    os.makedirs(mnt)
    make_luks(image, size, key)
    loop = subprocess.run(["losetup", "--show", "-f", "-o", str(LUKS_HEADER), "--sizelimit",
                           str(size - LUKS_HEADER), image], check=True, capture_output=True,
                          text=True).stdout.strip()

    def mount():
        subprocess.run(["mount", "-o", "nodiscard", loop, mnt], check=True)

    def umount():
        subprocess.run(["umount", mnt], check=True)
        subprocess.run(["sync"], check=True)

    try:
        t0 = time.monotonic()
        subprocess.run(["mkfs.ext4", "-q", "-b", "4096", "-E", "lazy_itable_init=0,lazy_journal_init=0,nodiscard",
                        loop], check=True)
        mount()
        snap = os.path.join(mnt, "hosts", "a")
        total = w1.build_w1(os.path.join(snap, "s0"), args.seed, args.files_per_dir)
        umount()
        print(f"W3: W1 ({500 * args.files_per_dir} files, {total / 1e6:.0f} MB) in ext4 at the LUKS data "
              f"offset of a 4 GiB sparse image (built in {time.monotonic() - t0:.1f} s)")
        targets = {f"coffer {bs}": (bs, os.path.join(work, f"C{bs}")) for bs in args.block_sizes}
        replica = os.path.join(work, "R.img")
        for name, (bs, dest) in targets.items():
            r = coffer(args, sshd, image, key, dest, bs)
            print(f"initial {name}: {r['s']:.2f} s, sent {r['sent']:,} bytes")
        sparse_copy(image, replica)
        rng = random.Random(args.seed + 1000)
        results, nochange = {}, {}
        tools = list(targets) + ["rsync --inplace"]
        n = 0
        for i in range(args.runs + 1):
            # A new hard-linked snapshot of the previous one; W1-change applied to it (changed
            # files are written as new files, as a backup does, never through the shared inode).
            mount()
            prev, cur = os.path.join(snap, f"s{n}"), os.path.join(snap, f"s{n + 1}")
            subprocess.run(["cp", "-al", prev, cur], check=True)
            n += 1
            if i > 0:
                change_snapshot(cur, rng, i, args.files_per_dir)
            umount()
            bucket = results if i > 0 else nochange
            order = tools[i % len(tools):] + tools[:i % len(tools)]
            for tool in order:
                if tool in targets:
                    r = coffer(args, sshd, image, key, targets[tool][1], targets[tool][0])
                else:
                    r = rsync(sshd, image, replica)
                bucket.setdefault(tool, []).append(r)
        report("W3 no-change night (a hard-linked snapshot with no file changed, 1 run)", nochange)
        per_file = {t: r[0]["sent"] / (500 * args.files_per_dir) for t, r in nochange.items()}
        print("bytes per file on a no-change night: " + ", ".join(f"{t} {v:.0f}" for t, v in per_file.items()))
        report(f"W3 W1-change as a new hard-linked snapshot ({args.runs} runs, alternating)", results,
               goal_time=1 / 5, goal_bytes="rsync")
    finally:
        subprocess.run(["umount", mnt], capture_output=True)
        subprocess.run(["losetup", "-d", loop], capture_output=True)


def change_snapshot(root, rng, round_no, files_per_dir):
    files = [os.path.join(root, f"d{t:02d}", f"s{s:02d}", f"f{i:03d}.bin")
             for t in range(10) for s in range(50) for i in range(files_per_dir)]
    for p in rng.sample(files, len(files) // 100):
        data = bytearray(open(p, "rb").read())
        at = rng.randrange(0, max(1, len(data) - 100))
        data[at:at + 100] = rng.randbytes(100)
        tmp = p + ".new"
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, p)
    d = os.path.join(root, f"new{round_no:02d}")
    os.makedirs(d)
    for i in range(20):
        with open(os.path.join(d, f"n{i:02d}.bin"), "wb") as f:
            f.write(rng.randbytes(1_000_000))


def scale(args, sshd):
    work = fresh_work(args, "scale")
    data = args.data_mib * MiB
    nblocks = args.changed_blocks
    print(f"Scale: sparse images with {args.data_mib} MiB of allocated random data after the LUKS header, "
          f"{nblocks} changed 4 KiB blocks per run, {args.runs} runs each")
    rows = []
    for gib in args.sizes:
        size = gib * GiB
        image, key = os.path.join(work, f"s{gib}.img"), os.path.join(work, f"s{gib}.key")
        make_luks(image, size, key)
        fill_random(image, LUKS_HEADER, data, args.seed)
        dest = os.path.join(work, f"C{gib}")
        coffer(args, sshd, image, key, dest, args.block_sizes[0])
        replica = os.path.join(work, f"R{gib}.img")
        if args.with_rsync:
            sparse_copy(image, replica)
        runs = {"coffer": [], "rsync --inplace": []}
        for i in range(args.runs):
            scatter(image, LUKS_HEADER, LUKS_HEADER + data, nblocks, args.seed + 100 + i)
            runs["coffer"].append(coffer(args, sshd, image, key, dest, args.block_sizes[0]))
            if args.with_rsync:
                runs["rsync --inplace"].append(rsync(sshd, image, replica))
        c = runs["coffer"]
        row = (gib, statistics.median(r["s"] for r in c), statistics.median(r["sent"] for r in c),
               max(r["rss"] for r in c))
        if args.with_rsync:
            rr = runs["rsync --inplace"]
            row += (statistics.median(r["s"] for r in rr), statistics.median(r["sent"] for r in rr),
                    max(r["rss"] for r in rr))
        rows.append(row)
        os.remove(image)
        shutil.rmtree(dest)
        if os.path.exists(replica):
            os.remove(replica)
    head = f"{'image':>7} {'coffer s':>9} {'coffer sent':>13} {'peak MiB':>9}"
    if args.with_rsync:
        head += f" {'rsync s':>9} {'rsync sent':>13} {'peak MiB':>9}"
    print(head)
    for row in rows:
        line = f"{row[0]:>5} G {row[1]:9.3f} {row[2]:13,.0f} {row[3]:9.1f}"
        if args.with_rsync:
            line += f" {row[4]:9.3f} {row[5]:13,.0f} {row[6]:9.1f}"
        print(line)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workload", choices=["w2", "w3", "scale"])
    ap.add_argument("--coffer", required=True, help="coffer binary (a Release build)")
    ap.add_argument("--work", default="/var/tmp/coffer-bench")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--block-sizes", nargs="+", default=None, help="coffer --block-size values to run")
    ap.add_argument("--size-gib", type=int, default=2, help="W2 image size")
    ap.add_argument("--far", action="store_true", help="W2: also the 2000 script's rsync form")
    ap.add_argument("--files-per-dir", type=int, default=100, help="W3: W1 files per directory")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16], help="Scale: image sizes in GiB")
    ap.add_argument("--data-mib", type=int, default=512, help="Scale: allocated data per image")
    ap.add_argument("--changed-blocks", type=int, default=5242, help="Scale: changed 4 KiB blocks")
    ap.add_argument("--with-rsync", action="store_true", help="Scale: run rsync too (slow on big images)")
    args = ap.parse_args()
    args.coffer = os.path.abspath(args.coffer)
    if args.block_sizes is None:
        args.block_sizes = ["64K", "4K"] if args.workload != "scale" else ["64K"]
    os.makedirs(args.work, exist_ok=True)
    sshd = Sshd(args.work)
    try:
        {"w2": w2, "w3": w3, "scale": scale}[args.workload](args, sshd)
    finally:
        sshd.stop()


if __name__ == "__main__":
    main()
