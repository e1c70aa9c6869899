complete -c xlaggctl -s s -l socket -d 'The daemon\'s management socket' -r -F
complete -c xlaggctl -l generate -d 'Write the man page or a shell completion script to standard output' -r -f -a "man\t'The man page (roff)'
bash\t'bash completion'
zsh\t'zsh completion'
fish\t'fish completion'"
complete -c xlaggctl -s j -l json -d 'Print JSON instead of text'
complete -c xlaggctl -s v -l verbose -d 'More detail: LACP actor/partner and per-port counters (ifconfig -v)'
complete -c xlaggctl -s n -l dry-run -d 'Check a change without applying it'
complete -c xlaggctl -l apply -d 'With import: apply the imported laggs instead of printing them'
complete -c xlaggctl -s h -l help -d 'Print help'
complete -c xlaggctl -s V -l version -d 'Print version'
