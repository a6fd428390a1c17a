#!/usr/bin/env bash
# quickstart.sh [WORKDIR]: install what coffer needs, build it, and run the nightly chain on local
# defaults: source A (a generated tree) -> vault on B (LUKS2 image, hard-linked snapshots) ->
# replica on C (a local directory standing in for the off-site host), then verify, and restore
# the latest snapshot from B.
# Where this kernel has no device-mapper the chain runs inside User-Mode Linux (tests/uml/uml-run).
# Run as root (it installs Debian packages and maps dm-crypt devices).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(realpath -m "${1:-$repo/demo}")
"$repo/.ci/install-deps"
cmake -S "$repo" -B "$repo/build" -G Ninja >/dev/null
cmake --build "$repo/build" --target coffer
exec "$repo/tests/uml/uml-run" -- "$repo/contrib/demo-chain.sh" "$repo/build/src/cli/coffer" "$work"
