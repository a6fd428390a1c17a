#!/bin/sh
# Scale: 1, 4 and 16 GiB sparse images, the same 5,242 changed blocks: bytes stay flat, time follows data read.
# Usage: tests/bench/scale.sh build-release/src/cli/coffer [options of w2_bench.py, e.g. --runs 3]
# Run by hand as root (loop devices, sshd); prints medians and ratios. See docs/replication.md.
set -e
coffer=${1:?usage: $0 path/to/coffer [options]}
shift
exec python3 "$(dirname "$0")/w2_bench.py" scale --coffer "$coffer" "$@"
