#!/bin/sh
# W3: W1 in ext4 in a 4 GiB image, W1-change as a new hard-linked snapshot; coffer vs rsync --inplace.
# Usage: tests/bench/w3.sh build-release/src/cli/coffer [options of w2_bench.py, e.g. --runs 3]
# Run by hand as root (loop devices, sshd); prints medians and ratios. See docs/replication.md.
set -e
coffer=${1:?usage: $0 path/to/coffer [options]}
shift
exec python3 "$(dirname "$0")/w2_bench.py" w3 --coffer "$coffer" "$@"
