# bash completion for coffer: every command, subcommand and option of `coffer --help`
# (tests/integration/run/check-completion.sh compares the two). Works with or without the
# bash-completion package (file names through its _filedir when it is there).
_coffer_subs() {
  case "$1" in
    "") echo "agent backup check config diff find forget image init ls replica replica-serve replicate restore run snapshots status vault" ;;
    "config") echo "check" ;;
    "image") echo "ls restore" ;;
    "replica") echo "fetch status verify" ;;
    "vault") echo "add-key close create grow header-backup open remove-key status" ;;
  esac
}
_coffer_opts() {
  case "$1" in
    "") echo "--config --dry-run --help --json --quiet --runtime-dir --verbose --version -c -h -n -q -v" ;;
    "agent") echo "--allow --help --receive-only --send-only -h" ;;
    "backup") echo "--exclude --exclude-from --help --include --name --one-file-system --remote-command -h -x" ;;
    "check") echo "--help --name --read-data --read-data-subset -h" ;;
    "config") echo "--help -h" ;;
    "config check") echo "--help -h" ;;
    "diff") echo "--help --key-file --name --passphrase-command --passphrase-file --remote-command --ssh-config --ssh-identity --ssh-port -h" ;;
    "find") echo "--help --key-file --name --passphrase-command --passphrase-file --remote-command --ssh-config --ssh-identity --ssh-port -h" ;;
    "forget") echo "--help --keep-daily --keep-half-yearly --keep-hourly --keep-last --keep-monthly --keep-weekly --keep-within --keep-yearly --name -h" ;;
    "image") echo "--help -h" ;;
    "image ls") echo "--help --key-file --long --name --passphrase-command --passphrase-file --recursive -R -h -l" ;;
    "image restore") echo "--delete --exclude --exclude-from --help --include --key-file --name --overwrite --passphrase-command --passphrase-file --remote-command --ssh-config --ssh-identity --ssh-port --verify -h" ;;
    "init") echo "--generate-key-file --help --kdf-iterations --kdf-memory --kdf-parallel --kdf-time --key-file --passphrase-command --passphrase-file --size --vault -h" ;;
    "ls") echo "--help --key-file --long --name --passphrase-command --passphrase-file --recursive --remote-command --ssh-config --ssh-identity --ssh-port -R -h -l" ;;
    "replica") echo "--help -h" ;;
    "replica fetch") echo "--expect-generation --expect-uuid --help --key-file --limit-rate --name --not-older-than --passphrase-command --passphrase-file --remote-command --restore --ssh-config --ssh-identity --ssh-port --threads -h" ;;
    "replica status") echo "- --help --remote-command --ssh-config --ssh-identity --ssh-port --threads -h" ;;
    "replica verify") echo "- --help --key-file --passphrase-command --passphrase-file --remote-command --ssh-config --ssh-identity --ssh-port --threads -h" ;;
    "replica-serve") echo "--help -h" ;;
    "replicate") echo "- --block-size --help --key-file --limit-rate --passphrase-command --passphrase-file --remote-command --reseed --ssh-config --ssh-identity --ssh-port --threads --verify -h" ;;
    "restore") echo "--delete --exclude --exclude-from --help --include --key-file --name --overwrite --passphrase-command --passphrase-file --remote-command --ssh-config --ssh-identity --ssh-port --verify -h" ;;
    "run") echo "--help --key-file --passphrase-command --passphrase-file --source --target --verify --wait -h" ;;
    "snapshots") echo "--help --host -h" ;;
    "status") echo "--help -h" ;;
    "vault") echo "--help -h" ;;
    "vault add-key") echo "--generate-key-file --help --kdf-iterations --kdf-memory --kdf-parallel --kdf-time --key-file --new-key-file --new-passphrase-file --passphrase-command --passphrase-file -h" ;;
    "vault close") echo "--help -h" ;;
    "vault create") echo "--generate-key-file --help --kdf-iterations --kdf-memory --kdf-parallel --kdf-time --key-file --passphrase-command --passphrase-file --size -h" ;;
    "vault grow") echo "--help --key-file --passphrase-command --passphrase-file --size -h" ;;
    "vault header-backup") echo "--help -h" ;;
    "vault open") echo "--help --key-file --mount --passphrase-command --passphrase-file -h" ;;
    "vault remove-key") echo "--help --key-file --passphrase-command --passphrase-file --slot -h" ;;
    "vault status") echo "--help -h" ;;
  esac
}
_coffer_files() {
  if declare -F _filedir >/dev/null; then _filedir; else mapfile -t COMPREPLY < <(compgen -f -- "$cur"); fi
}
_coffer() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
  COMPREPLY=()
  case "$prev" in
    -c|--config|--key-file|--passphrase-file|--generate-key-file|--new-key-file|--new-passphrase-file|--exclude-from|--runtime-dir|--mount|--vault|--ssh-config|--ssh-identity)
      _coffer_files; return ;;
  esac
  # The command path: the words that are subcommands of the path so far (option values are not).
  local path="" i w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    [[ $w == -* ]] && continue
    if [[ " $(_coffer_subs "$path") " == *" $w "* ]]; then path=${path:+$path }$w; fi
  done
  if [[ $cur == -* ]]; then
    local words
    words=$(_coffer_opts "$path")
    [[ -n $path ]] && words="$words $(_coffer_opts "")"  # global options may follow a command
    mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
  elif [[ -n $(_coffer_subs "$path") ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(_coffer_subs "$path")" -- "$cur")
  else
    _coffer_files
  fi
}
complete -F _coffer coffer
