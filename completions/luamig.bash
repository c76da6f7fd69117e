# bash completion for luamig                                    -*- shell-script -*-
# Installed by `make install` as $(PREFIX)/share/bash-completion/completions/luamig;
# or source it from ~/.bashrc. Needs nothing from the bash-completion package.
#
# Completes the commands and the options of each, as the command's own table
# lists them (the hidden `luamig --list-cmds` and `luamig --list-opts [CMD]`), and,
# where a revision is expected, the revision ids and branch labels found in the
# versions directory (`versions = "..."` in luamig.lua, or -c FILE's, default
# versions/) plus the symbolic targets the command takes (head, heads, base).

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

# The options of command $2 (the global ones without it), as luamig $1 lists them:
# "--long -s ARG help..." lines, "-" for none; then "args KEY WORDS..." for the
# positional arguments. Sets _luamig_opts (the names), _luamig_valued (the names
# that take a value, each with the name of its value: " --head=REV -c=FILE "),
# _luamig_args (KEY) and _luamig_words (WORDS).
_luamig_options() {
  local long short arg rest
  _luamig_opts="" _luamig_valued=" " _luamig_args="" _luamig_words=""
  while read -r long short arg rest; do
    if [[ $long == args ]]; then
      _luamig_args=$short
      _luamig_words="$arg $rest"
      continue
    fi
    _luamig_opts+=" $long"
    [[ $short != - ]] && _luamig_opts+=" $short"
    if [[ $arg != - ]]; then
      _luamig_valued+="$long=$arg "
      [[ $short != - ]] && _luamig_valued+="$short=$arg "
    fi
  done < <("$1" --list-opts ${2:+"$2"} 2>/dev/null)
}

_luamig() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev="" bin=${COMP_WORDS[0]}
  [[ $COMP_CWORD -gt 0 ]] && prev=${COMP_WORDS[COMP_CWORD - 1]}
  bin=${bin/#\~/$HOME}
  COMPREPLY=()

  local commands global global_valued
  commands=" $("$bin" --list-cmds 2>/dev/null | tr '\n' ' ')"
  _luamig_options "$bin"
  global=$_luamig_opts global_valued=$_luamig_valued

  # Find the command and the config file among the words before the cursor. Before
  # the command, an option that is not a global one takes a value unless a command
  # follows it (luamig --lock-wait 5 upgrade).
  local i w cmd="" cfg=luamig.lua valued=$global_valued
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    case $w in
      -c | --config)
        # bash splits --config=FILE at the '=' (COMP_WORDBREAKS): --config = FILE
        if [[ ${COMP_WORDS[i + 1]} == = ]]; then ((i++)); fi
        cfg=${COMP_WORDS[i + 1]}; ((i++)) ;;
      --config=*) cfg=${w#--config=} ;;
      -*=* | -[0-9]*) ;;
      -*)
        if [[ $valued == *" $w="* ]]; then
          ((i++))
        elif [[ -z $cmd && "$global " != *" $w "* && $commands != *" ${COMP_WORDS[i + 1]} "* &&
                $((i + 1)) -lt $COMP_CWORD ]]; then
          ((i++))
        fi ;;
      *)
        if [[ -z $cmd ]]; then
          cmd=$w
          _luamig_options "$bin" "$cmd"
          valued=$global_valued$_luamig_valued
        fi ;;
    esac
  done
  cfg=${cfg/#\~/$HOME}
  [[ -n $cmd ]] && _luamig_options "$bin" "$cmd"

  # The value of an option, by the name of its value.
  local vw=" $_luamig_valued $global_valued "
  if [[ $vw == *" $prev="* ]]; then
    local arg=${vw#*" $prev="}
    arg=${arg%% *}
    case $arg in
      FILE)
        _luamig_reply -f -- "$cur"
        compopt -o filenames 2>/dev/null ;;
      DIR)
        _luamig_reply -d -- "$cur"
        compopt -o filenames 2>/dev/null ;;
      REV) _luamig_reply -W "$(_luamig_revisions "$cfg") head base" -- "$cur" ;;
      *'|'*) _luamig_reply -W "${arg//|/ }" -- "$cur" ;;
    esac
    return 0
  fi

  if [[ -z $cmd ]]; then
    if [[ $cur == -* ]]; then
      _luamig_reply -W "$global" -- "$cur"
    else
      _luamig_reply -W "$commands" -- "$cur"
    fi
    return 0
  fi

  if [[ $cur == -* ]]; then
    _luamig_reply -W "$_luamig_opts $global" -- "$cur"
    return 0
  fi
  case $_luamig_args in
    "") ;;
    dir)
      _luamig_reply -d -- "$cur"
      compopt -o filenames 2>/dev/null ;;
    command) _luamig_reply -W "$commands" -- "$cur" ;;
    *) _luamig_reply -W "$_luamig_words $(_luamig_revisions "$cfg")" -- "$cur" ;;
  esac
  return 0
}

complete -F _luamig luamig
