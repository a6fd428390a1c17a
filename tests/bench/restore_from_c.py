#!/usr/bin/env python3
"""Single-file restore from C (issue 14, workloads.md R4): a W1 tree (w1.build_w1, fixed seed)
plus one 1 MiB file is backed up into a repository, put into ext4 (mkfs.ext4 -d) inside a
sparse LUKS2 image (cryptsetup luksFormat; the file system encrypted here with the header's
volume key, AES-XTS-plain64 with dm-crypt's LUKS2 IVs, so no dm-crypt is needed) and replicated
to a local replica C with `coffer replicate`. Then, alternately:
  reader:        coffer restore C latest:one.bin OUT            (blocks fetched on demand)
  fetch + copy:  coffer replica fetch C IMG && coffer restore IMG latest:one.bin OUT
time and bytes fetched of each, medians printed.

Usage: restore_from_c.py --coffer build/src/cli/coffer [--files-per-dir 20] [--runs 3]
                         [--work /var/tmp/restore-c-bench]
Needs python3-cryptography (AES-XTS). Run by hand, never in CI.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import w1  # noqa: E402

HEADER = 16 << 20
SECTOR = 4096


def volume_key(image, key):
    out = subprocess.run(["cryptsetup", "luksDump", "--dump-volume-key", "--batch-mode",
                          "--key-file", key, image], check=True, capture_output=True,
                         text=True).stdout
    hexes = []
    grab = False
    for line in out.splitlines():
        if line.startswith("MK dump:"):
            grab = True
            line = line[len("MK dump:"):]
        elif grab and not line.startswith("\t") and not line.startswith(" "):
            break
        if grab:
            hexes += line.split()
    return bytes(int(h, 16) for h in hexes)


def encrypt(plain, image, vk):
    with open(plain, "rb") as src, open(image, "r+b") as out:
        n = 0
        while True:
            block = src.read(1 << 20)
            if not block:
                break
            if block.count(0) == len(block):  # zeros stay holes in the image (ext4 never
                n += len(block) // SECTOR      # reads unused blocks)
                continue
            enc = bytearray()
            for i in range(0, len(block), SECTOR):
                tweak = ((n + i // SECTOR) * 8).to_bytes(16, "little")
                e = Cipher(algorithms.AES(vk), modes.XTS(tweak)).encryptor()
                enc += e.update(block[i:i + SECTOR]) + e.finalize()
            out.seek(HEADER + n * SECTOR)
            out.write(enc)
            n += len(block) // SECTOR


def run(argv):
    t0 = time.monotonic()
    p = subprocess.run(argv, check=True, capture_output=True, text=True)
    return time.monotonic() - t0, p.stdout


def last(out, kind):
    found = None
    for line in out.splitlines():
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if j.get("type") == kind:
            found = j
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--coffer", required=True)
    ap.add_argument("--files-per-dir", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", default="/var/tmp/restore-c-bench")
    a = ap.parse_args()
    coffer = os.path.abspath(a.coffer)
    os.makedirs(a.work, exist_ok=True)
    src, repo, plain, image, key, C = (os.path.join(a.work, n) for n in (
        "src", "repo", "plain.img", "vault.img", "vault.key", "C"))
    env = dict(os.environ, COFFER_RUNTIME_DIR=os.path.join(a.work, "run"), COFFER_CONFIG="")
    if not os.path.isdir(C):
        total = w1.build_w1(src, 1, a.files_per_dir)
        with open(os.path.join(src, "one.bin"), "wb") as f:
            f.write(os.urandom(1 << 20))
        os.makedirs(repo, exist_ok=True)
        subprocess.run([coffer, "backup", src, repo, "--name", "w1"], check=True,
                       stdout=subprocess.DEVNULL)
        size = max(4 << 30, 3 * total)
        subprocess.run(["truncate", "-s", str(size), plain], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-b", "4096", "-d", repo, plain], check=True)
        with open(key, "w") as f:
            f.write("0123456789abcdef0123456789abcdef")
        subprocess.run(["truncate", "-s", str(size + HEADER), image], check=True)
        subprocess.run(["cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2",
                        "--sector-size", "4096", "--key-size", "512", "--pbkdf", "argon2id",
                        "--pbkdf-memory", "65536", "--pbkdf-force-iterations", "4",
                        "--key-file", key, image], check=True)
        encrypt(plain, image, volume_key(image, key))
        subprocess.run([coffer, "replicate", image, C, "--key-file", key], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        print(f"W1: {10 * 50 * a.files_per_dir} files, {total / 1e6:.1f} MB in a "
              f"{size >> 30} GiB image", flush=True)
    out, img2 = os.path.join(a.work, "out"), os.path.join(a.work, "fetched.img")
    res = {"reader": [], "fetch + copy": []}
    for r in range(a.runs):
        shutil.rmtree(out, ignore_errors=True)
        t, o = run([coffer, "--json", "restore", C, "latest:one.bin", out, "--key-file", key])
        res["reader"].append((t, last(o, "fetched")["bytes"]))
        shutil.rmtree(out, ignore_errors=True)
        if os.path.exists(img2):
            os.unlink(img2)
        t1, o = run([coffer, "--json", "replica", "fetch", C, img2, "--key-file", key])
        fetched = last(o, "fetched")["bytes_fetched"]
        t2, _ = run([coffer, "restore", img2, "latest:one.bin", out, "--key-file", key])
        res["fetch + copy"].append((t1 + t2, fetched))
        for k, v in res.items():
            print(f"run {r + 1} {k}: {v[-1][0]:.2f} s, {v[-1][1] / 1e6:.1f} MB fetched", flush=True)
    for k, v in res.items():
        print(f"{k:13} median {statistics.median(x[0] for x in v):.2f} s, "
              f"{statistics.median(x[1] for x in v) / 1e6:.2f} MB fetched")


if __name__ == "__main__":
    main()
