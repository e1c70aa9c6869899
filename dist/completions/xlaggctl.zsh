#compdef xlaggctl

autoload -U is-at-least

_xlaggctl() {
    typeset -A opt_args
    typeset -a _arguments_options
    local ret=1

    if is-at-least 5.2; then
        _arguments_options=(-s -S -C)
    else
        _arguments_options=(-s -C)
    fi

    local context curcontext="$curcontext" state line
    _arguments "${_arguments_options[@]}" : \
'-s+[The daemon'\''s management socket]:SOCKET:_files' \
'--socket=[The daemon'\''s management socket]:SOCKET:_files' \
'--generate=[Write the man page or a shell completion script to standard output]:GENERATE:((man\:"The man page (roff)"
bash\:"bash completion"
zsh\:"zsh completion"
fish\:"fish completion"))' \
'-j[Print JSON instead of text]' \
'--json[Print JSON instead of text]' \
'-v[More detail\: LACP actor/partner and per-port counters (ifconfig -v)]' \
'--verbose[More detail\: LACP actor/partner and per-port counters (ifconfig -v)]' \
'-n[Check a change without applying it]' \
'--dry-run[Check a change without applying it]' \
'--apply[With import\: apply the imported laggs instead of printing them]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
'::target -- A lagg (laggN), or dump, config, import, web, brief:_default' \
'*::words -- ifconfig words for the lagg (see below), or import'\''s file:_default' \
&& ret=0
}

(( $+functions[_xlaggctl_commands] )) ||
_xlaggctl_commands() {
    local commands; commands=()
    _describe -t commands 'xlaggctl commands' commands "$@"
}

if [ "$funcstack[1]" = "_xlaggctl" ]; then
    _xlaggctl "$@"
else
    compdef _xlaggctl xlaggctl
fi
