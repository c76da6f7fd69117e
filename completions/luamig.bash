# bash completion for luamig                                    -*- shell-script -*-
# Installed by `make install` as $(PREFIX)/share/bash-completion/completions/luamig;
# or source it from ~/.bashrc. Needs nothing from the bash-completion package.
#
# Completes the commands, the options of each command, and, where a revision is
# expected, the revision ids and branch labels found in the versions directory
# (`versions = "..."` in luamig.lua, or -c FILE's, default versions/) plus head, heads
# and base.

_luamig_commands="branches check current downgrade heads help history init lint merge revision show stamp status upgrade verify"

# The versions directories of the project: from `versions = "dir"` or
# `versions = { "a", "b" }` (on one line) in the config file ($1), relative to its
# directory; versions/ beside it when the file says nothing.
_luamig_versions_dirs() {
  local cfg=$1 dir line d
  dir=$(dirname -- "$cfg")
  if [[ -r $cfg ]]; then
    line=$(sed -n -e '/^[[:space:]]*--/d' \
      -e 's/^\(.*[^_[:alnum:]]\)\{0,1\}versions[[:space:]]*=[[:space:]]*//p' -- "$cfg" 2>/dev/null |
      head -n 1)
  fi
  if [[ $line == '{'* ]]; then
    line=${line%%\}*}                   # the list, up to its closing brace
  else
    line=${line%%[,;]*}                  # the string
  fi
  if [[ $line == *[\"\']* ]]; then
    while IFS= read -r d; do
      d=${d:1:${#d}-2}
      if [[ $d == /* ]]; then printf '%s\n' "$d"; else printf '%s\n' "$dir/$d"; fi
    done < <(printf '%s\n' "$line" | grep -o -e '"[^"]*"' -e "'[^']*'")
  else
    printf '%s\n' "$dir/versions"
  fi
}

# Revision ids and branch labels of the project (config file $1), one a line.
_luamig_revisions() {
  local d files=()
  while IFS= read -r d; do
    [[ -d $d ]] || continue
    files+=("$d"/*.lua)
  done < <(_luamig_versions_dirs "$1")
  [[ ${#files[@]} -gt 0 && -e ${files[0]} ]] || return 0
  # revision = "id"
  sed -n "s/^[[:space:]]*revision[[:space:]]*=[[:space:]]*[\"']\([^\"']*\)[\"'].*/\1/p" \
    -- "${files[@]}" 2>/dev/null
  # branch_labels = "name" or { "a", "b" }
  sed -n 's/^[[:space:]]*branch_labels[[:space:]]*=//p' -- "${files[@]}" 2>/dev/null |
    grep -o -e '"[^"]*"' -e "'[^']*'" | tr -d "\"'"
}

# COMPREPLY from compgen's lines (names with spaces stay whole).
_luamig_reply() {
  mapfile -t COMPREPLY < <(compgen "$@")
}

_luamig() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=""
  [[ $COMP_CWORD -gt 0 ]] && prev=${COMP_WORDS[COMP_CWORD - 1]}
  COMPREPLY=()

  # Find the command and the config file among the words before the cursor.
  local i w cmd="" cfg=luamig.lua
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    case $w in
      -c | --config)
        # bash splits --config=FILE at the '=' (COMP_WORDBREAKS): --config = FILE
        if [[ ${COMP_WORDS[i + 1]} == = ]]; then ((i++)); fi
        cfg=${COMP_WORDS[i + 1]}; ((i++)) ;;
      --config=*) cfg=${w#--config=} ;;
      --url | -m | --message | --rev-id | --head | -r | --rev-range | --branch-label | \
        --depends-on | --version-path | --lock-wait | --revision-timeout | --models | --backup | \
        --targets | --match | --jobs) ((i++)) ;;
      -*) ;;
      *) [[ -z $cmd ]] && cmd=$w ;;
    esac
  done
  cfg=${cfg/#\~/$HOME}

  # The value of an option.
  case $prev in
    -c | --config)
      _luamig_reply -f -- "$cur"
      compopt -o filenames 2>/dev/null
      return 0 ;;
    --targets)
      _luamig_reply -f -- "$cur"
      compopt -o filenames 2>/dev/null
      return 0 ;;
    --version-path)
      _luamig_reply -d -- "$cur"
      compopt -o filenames 2>/dev/null
      return 0 ;;
    --head | --depends-on)
      _luamig_reply -W "$(_luamig_revisions "$cfg") head base" -- "$cur"
      return 0 ;;
    --url | -m | --message | --rev-id | -r | --rev-range | --branch-label | --lock-wait | --revision-timeout | --models | --backup | --match | --jobs)
      return 0 ;;
  esac

  local global="-c --config --url -q --quiet --json -h --help --version"
  if [[ -z $cmd ]]; then
    if [[ $cur == -* ]]; then
      _luamig_reply -W "$global" -- "$cur"
    else
      _luamig_reply -W "$_luamig_commands" -- "$cur"
    fi
    return 0
  fi

  local opts="" words=""
  # many databases at once (upgrade, downgrade, current, status, verify)
  local fleet="--targets --all-databases --all-schemas --match --jobs --continue-on-error"
  case $cmd in
    current) opts="-v --verbose $fleet" ;;
    branches | heads) opts="-v --verbose" ;;
    history) opts="-v --verbose -i --indicate-current -r --rev-range" ;;
    help) words=$_luamig_commands ;;
    init)
      if [[ $cur != -* ]]; then
        _luamig_reply -d -- "$cur"
        compopt -o filenames 2>/dev/null
        return 0
      fi ;;
    revision)
      opts="-m --message --rev-id --head --splice --branch-label --depends-on --version-path
            --autogenerate --allow-empty --models" ;;
    check) opts="--models" ;;
    lint)
      opts="-v --verbose --json --style"
      words="base:head $(_luamig_revisions "$cfg")" ;;
    merge)
      opts="-m --message --rev-id"
      words="heads $(_luamig_revisions "$cfg")" ;;
    show) words="head heads base $(_luamig_revisions "$cfg")" ;;
    stamp)
      opts="--purge --sql"
      words="head heads base $(_luamig_revisions "$cfg")" ;;
    upgrade)
      opts="--sql --lock-wait --revision-timeout --lint --backup $fleet"
      words="head heads $(_luamig_revisions "$cfg")" ;;
    downgrade)
      opts="--sql --lock-wait --revision-timeout $fleet"
      words="base $(_luamig_revisions "$cfg")" ;;
    status) opts=$fleet ;;
    verify) opts="--strict $fleet" ;;
  esac
  if [[ $cur == -* ]]; then
    _luamig_reply -W "$opts $global" -- "$cur"
  else
    _luamig_reply -W "$words" -- "$cur"
  fi
  return 0
}

complete -F _luamig luamig
