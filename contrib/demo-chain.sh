#!/usr/bin/env bash
# demo-chain.sh COFFER WORKDIR: the A->B->C chain, step by step, with the real binary.
# Needs dm-crypt; contrib/quickstart.sh runs it inside User-Mode Linux where there is none.
set -euo pipefail
coffer=$1
work=$2
step() { printf '\n== %s\n' "$*"; }

rm -rf "$work" && mkdir -p "$work/A" "$work/B" "$work/C"
export COFFER_RUNTIME_DIR="$work/B/run"
image="$work/B/vault.img"
key="$work/B/vault.key"
mnt="$work/B/mnt"

step "A: a source tree with odd names, a hard link, a symlink and a sparse file"
mkdir -p "$work/A/src/docs" "$work/A/src/dir with space"
cp -a /usr/share/common-licenses/. "$work/A/src/docs/"
printf 'newline in name\n' > "$work/A/src/dir with space/new"$'\n'"line"
printf 'report\n' > "$work/A/src/report.txt"
ln "$work/A/src/report.txt" "$work/A/src/report-hardlink.txt"
ln -s report.txt "$work/A/src/latest-report"
truncate -s 16M "$work/A/src/sparse.img" && printf 'tail' >> "$work/A/src/sparse.img"
du -sh --apparent-size "$work/A/src"

step "B: create an encrypted vault (LUKS2 argon2id, ext4) with a generated key file"
# Demo KDF cost: small enough for User-Mode Linux; production keeps the benchmarked default.
"$coffer" vault create "$image" --size 256M --generate-key-file "$key" \
  --kdf-memory 64M --kdf-iterations 4 --kdf-parallel 1
"$coffer" vault status "$image"

cat >"$work/coffer.toml" <<TOML
runtime_dir = "$work/B/run"

[vault]
image = "$image"
mount = "$mnt"
key_file = "$key"

[[source]]
name = "demo"
path = "$work/A/src"

[[target]]
name = "offsite"
dest = "$work/C"
TOML
export COFFER_CONFIG="$work/coffer.toml"
"$coffer" config check

step "nightly run 1: snapshot A into the vault, close it, replicate to C, verify C"
"$coffer" run --verify

step "A changes; nightly run 2: unchanged files become hard links, only changed blocks go to C"
printf 'changed\n' >> "$work/A/src/report.txt"
"$coffer" run --verify
cmp "$image" "$work/C/image" && echo "replica on C is byte-identical to the vault on B"

step "B: open the vault, list the snapshots, compare the latest with A"
"$coffer" vault open
"$coffer" snapshots "$mnt"
latest=$(readlink -f "$mnt/hosts/demo/latest")
diff -r "$work/A/src" "$latest/tree"
echo "latest snapshot $latest equals the source"
step "restore the latest snapshot from B into a new folder and compare it with A"
"$coffer" restore "$mnt" latest "$work/restored" --verify
diff -r "$work/A/src" "$work/restored"
echo "restored tree equals the source"
"$coffer" vault close
step "done: vault $image, replica $work/C, config $work/coffer.toml"
