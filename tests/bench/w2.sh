#!/bin/sh
# W2: a 2 GiB ciphertext image, 1% of its 4 KiB blocks rewritten; coffer (64K and 4K blocks) vs rsync --inplace.
# Usage: tests/bench/w2.sh build-release/src/cli/coffer [options of w2_bench.py, e.g. --runs 3]
# Run by hand as root (loop devices, sshd); prints medians and ratios. See docs/replication.md.
set -e
coffer=${1:?usage: $0 path/to/coffer [options]}
shift
exec python3 "$(dirname "$0")/w2_bench.py" w2 --coffer "$coffer" "$@"
