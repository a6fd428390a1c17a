# bash completion for coffer: commands, subcommands and options.
_coffer() {
  local cur prev words cword
  _init_completion || return
  local globals="-c --config -v --verbose -q --quiet --json -n --dry-run --runtime-dir --version --help"
  local commands="vault config backup agent snapshots replicate replica-serve replica run"
  local keyopts="--key-file --passphrase-file --passphrase-command"
  case "$prev" in
    -c|--config|--key-file|--passphrase-file|--generate-key-file|--new-key-file|--new-passphrase-file|--exclude-from|--runtime-dir|--mount)
      _filedir; return ;;
  esac
  local i cmd="" sub=""
  for ((i = 1; i < cword; i++)); do
    case "${words[i]}" in
      -*) ;;
      *) if [[ -z $cmd ]]; then cmd=${words[i]}; elif [[ -z $sub ]]; then sub=${words[i]}; fi ;;
    esac
  done
  case "$cmd" in
    "") COMPREPLY=($(compgen -W "$commands $globals" -- "$cur")) ;;
    vault)
      if [[ -z $sub ]]; then
        COMPREPLY=($(compgen -W "create open close status add-key remove-key header-backup grow" -- "$cur"))
      else
        COMPREPLY=($(compgen -W "$keyopts --size --mount --generate-key-file --new-key-file --new-passphrase-file --slot --kdf-memory --kdf-iterations --kdf-parallel --kdf-time" -- "$cur"))
        [[ $cur != -* ]] && _filedir
      fi ;;
    config) COMPREPLY=($(compgen -W "check" -- "$cur")) ;;
    replica) [[ -z $sub ]] && COMPREPLY=($(compgen -W "status verify" -- "$cur")) || COMPREPLY=($(compgen -W "$keyopts" -- "$cur")) ;;
    backup) COMPREPLY=($(compgen -W "--name --exclude --include --exclude-from --one-file-system --remote-command" -- "$cur")); [[ $cur != -* ]] && _filedir ;;
    replicate) COMPREPLY=($(compgen -W "$keyopts --block-size --remote-command --limit-rate --reseed" -- "$cur")); [[ $cur != -* ]] && _filedir ;;
    *) [[ $cur == -* ]] && COMPREPLY=($(compgen -W "$globals" -- "$cur")) || _filedir ;;
  esac
}
complete -F _coffer coffer
