#!/usr/bin/env bash
# check-completion.sh COFFER_BIN: contrib/completions/coffer.bash knows every command,
# subcommand and option that `coffer --help` lists (recursively), and offers none it does not.
# Runs the completion function itself with COMP_WORDS as bash would set them.
set -uo pipefail
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
source "$here/../../../contrib/completions/coffer.bash"
complete_words() {  # words... (the last is the one being completed) -> sorted candidates
  COMP_WORDS=(coffer "$@")
  COMP_CWORD=$#
  COMPREPLY=()
  _coffer
  printf '%s\n' "${COMPREPLY[@]}" | sort -u | tr '\n' ' ' | sed 's/ $//'
}
bad=0
table=$("$here/help-table.sh" "$bin") || { echo "help-table.sh failed"; exit 1; }
globals=$(head -n 1 <<<"$table" | cut -d'|' -f3)
while IFS='|' read -r path subs opts; do
  # shellcheck disable=SC2086
  set -- $path
  want_opts=$opts
  [[ -n $path ]] && want_opts=$(tr ' ' '\n' <<<"$opts $globals" | sort -u | tr '\n' ' ' | sed 's/ $//')
  got=$(complete_words "$@" -)
  [[ "$got" == "$want_opts" ]] || { echo "coffer $path -<TAB>: completion offers [$got], --help has [$want_opts]"; bad=1; }
  if [[ -n $subs ]]; then
    got=$(complete_words "$@" "")
    [[ "$got" == "$subs" ]] || { echo "coffer $path <TAB>: completion offers [$got], --help has [$subs]"; bad=1; }
  fi
done <<<"$table"
[[ $bad -eq 0 ]] && echo "completion matches --help for $(wc -l <<<"$table") command paths"
exit $bad
