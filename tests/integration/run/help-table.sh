#!/usr/bin/env bash
# help-table.sh COFFER_BIN: every command path of `coffer --help` (recursively) with its
# subcommands and options, one line each: "PATH|SUBCOMMANDS|OPTIONS" (PATH empty for the top).
# Used by check-completion.sh; the options are the first column of each help line only, so a
# description that names another option ("Excludes: --x") does not count.
set -euo pipefail
bin=$1
opts() {
  "$bin" "$@" --help | awk '/^Options:/{o=1;next} /^[A-Za-z]/{o=0} o && /^ +-/{sub(/^ +/,""); sub(/  .*/,""); print}' |
    tr ', ' '\n\n' | grep -E '^-' | sort -u | tr '\n' ' ' | sed 's/ $//'
}
subs() {
  "$bin" "$@" --help | awk '/^Subcommands:/{s=1;next} /^[A-Za-z]/{s=0} s && /^  [a-z]/{print $1}' | sort | tr '\n' ' ' | sed 's/ $//'
}
walk() {
  local s
  s=$(subs "$@")
  echo "$*|$s|$(opts "$@")"
  for c in $s; do walk "$@" "$c"; done
}
walk
