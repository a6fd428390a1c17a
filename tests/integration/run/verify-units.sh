#!/usr/bin/env bash
# verify-units.sh COFFER_BIN: contrib/systemd/ passes `systemd-analyze verify` with nothing on
# stderr (an unknown key is only a warning there, so any output fails the test), and says what
# docs/man/coffer-run.md promises. Exit 77 (skipped) where systemd is not installed.
set -euo pipefail
bin=$1
src=$(cd "$(dirname "$0")/../../../contrib/systemd" && pwd)
command -v systemd-analyze >/dev/null || { echo "skipped: systemd-analyze is not installed"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp "$src/coffer.service" "$src/coffer.timer" "$tmp/"
# verify checks that ExecStart's program exists: point it at the binary just built.
sed -i "s|^ExecStart=/usr/local/bin/coffer |ExecStart=$bin |" "$tmp/coffer.service"
grep -q "^ExecStart=$bin run$" "$tmp/coffer.service" || { echo "ExecStart is not 'coffer run'"; exit 1; }
out=$(cd "$tmp" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify ./coffer.service ./coffer.timer 2>&1) || {
  echo "systemd-analyze verify failed:"; echo "$out"; exit 1; }
[[ -z "$out" ]] || { echo "systemd-analyze verify warned:"; echo "$out"; exit 1; }
for want in "Type=oneshot" "Nice=19" "IOSchedulingClass=idle" "LoadCredential=coffer.key:"; do
  grep -q "^$want" "$src/coffer.service" || { echo "coffer.service lacks $want"; exit 1; }
done
for want in "OnCalendar=daily" "Persistent=true" "RandomizedDelaySec="; do
  grep -q "^$want" "$src/coffer.timer" || { echo "coffer.timer lacks $want"; exit 1; }
done
echo "contrib/systemd: both units verify"
