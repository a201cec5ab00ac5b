# bash completion for hakctl(1) and hakmem(1); installed as
# $(datadir)/bash-completion/completions/hakctl and .../hakmem (the same
# file: bash-completion loads it by either command's name).  Sourcing it by
# hand works too: . completion.bash
#
# hakctl: commands, options (per command; per subcommand for profile),
# pids from "hakctl ps", control names from "hakctl -p PID list" for get,
# watch, dump, list and set (set: writable names only, then values for
# modes and booleans), profile's subcommands and formats, files for diff.  hakmem: its
# options, modes, HAKMEM_CONF keys, then the command and its own completion.

# COMP_WORDS splits at ':' and '=' (COMP_WORDBREAKS): "--pid=12" is three
# words, "thp:0,decay_ms" too.  _hakmem_words joins them back into words[],
# cword, cur and orig[] (a joined word's first index in COMP_WORDS).
_hakmem_words() {
    words=() orig=() cword=0
    local i w glue=0
    for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
        w=${COMP_WORDS[i]}
        if [[ ${#words[@]} -gt 0 && ( $glue -eq 1 || $w == : || $w == = ) ]]; then
            words[${#words[@]} - 1]+=$w
        else
            words+=("$w") orig+=("$i")
        fi
        glue=0
        [[ $w == : || $w == = ]] && glue=1
        [[ $i -eq $COMP_CWORD ]] && cword=$((${#words[@]} - 1))
    done
    [[ $COMP_CWORD -ge ${#COMP_WORDS[@]} ]] && { words+=(""); orig+=("$COMP_CWORD"); cword=$((${#words[@]} - 1)); }
    cur=${words[cword]}
}

# _hakmem_trim: COMPREPLY holds whole joined words; bash replaces only the
# part after the last break, so the part before it goes.
_hakmem_trim() {
    local part=${COMP_WORDS[COMP_CWORD]}
    [[ $COMP_CWORD -ge ${#COMP_WORDS[@]} ]] && part=
    [[ $part == : || $part == = ]] && part=
    local lead=${cur%"$part"} i
    [[ -z $lead ]] && return
    for i in "${!COMPREPLY[@]}"; do COMPREPLY[i]=${COMPREPLY[i]#"$lead"}; done
}

# _hakctl_pid WORD...: the value of the last -p/--pid among the words.
_hakctl_pid() {
    local pid= i w
    for ((i = 1; i < ${#words[@]}; i++)); do
        w=${words[i]}
        case $w in
            -p|--pid) [[ $i -ne $cword ]] && pid=${words[i + 1]} ;;
            -p[0-9]*) pid=${w#-p} ;;
            --pid=*) pid=${w#--pid=} ;;
        esac
    done
    [[ $pid =~ ^[0-9]+$ ]] && echo "$pid"
}

# _hakctl_names PID [writable]: control names of that process's page.
_hakctl_names() {
    local prog=${words[0]}
    if [[ $2 == writable ]]; then
        "$prog" -p "$1" list 2>/dev/null |
            awk '{ acc = ($2 == "struct") ? $4 : $3 } $2 == "action" || acc ~ /w/ { print $1 }'
    else
        "$prog" -p "$1" list 2>/dev/null | awk '{ print $1 }'
    fi
}

_hakctl() {
    local -a words orig
    local cword cur
    _hakmem_words
    _hakctl_complete
    _hakmem_trim
    return 0
}

_hakctl_complete() {
    local prev=
    [[ $cword -gt 0 ]] && prev=${words[cword - 1]}
    local prog=${words[0]}
    local commands="ps get dump list set watch top profile metrics serve help"
    COMPREPLY=()

    # The option before the cursor takes a value.
    case $prev in
        -p|--pid)
            COMPREPLY=($(compgen -W "$("$prog" ps 2>/dev/null | awk 'NR > 1 { print $1 }')" -- "$cur"))
            return 0 ;;
        -l|--listen)
            COMPREPLY=($(compgen -W "127.0.0.1:9464 [::1]:9464" -- "$cur"))
            return 0 ;;
        -f|--format)
            COMPREPLY=($(compgen -W "pprof folded text svg" -- "$cur"))
            return 0 ;;
        -o|--output)
            COMPREPLY=($(compgen -f -- "$cur"))
            return 0 ;;
        -t|--timeout|-i|--interval|-n|--count|-m|--max-requests|-c|--frames|-r|--rate)
            return 0 ;;
    esac

    # The command and the arguments after it (option values skipped).
    local cmd= i w
    local -a args=()
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        case $w in
            -p|--pid|-t|--timeout|-i|--interval|-n|--count|-l|--listen|-m|--max-requests|\
            -o|--output|-f|--format|-c|--frames|-r|--rate) ((i++)) ;;
            -*) ;;
            *) if [[ -z $cmd ]]; then cmd=$w; else args+=("$w"); fi ;;
        esac
    done

    if [[ $cur == -* ]]; then
        local opts="-p --pid -h --help -V --version"
        case $cmd in
            ps) opts="-a --all --json -h --help" ;;
            get) opts="-p --pid --json --human -h --help" ;;
            dump) opts="-p --pid --json --human --conf -h --help" ;;
            list) opts="-p --pid --json -h --help" ;;
            set) opts="-p --pid --timeout -h --help" ;;
            watch) opts="-p --pid -i --interval -n --count --json -h --help" ;;
            top) opts="-p --pid -i --interval -n --count -a --all -h --help" ;;
            profile)
                case ${args[0]} in
                    start) opts="-p --pid --rate --timeout -h --help" ;;
                    dump) opts="-p --pid -o --output --format --alloc -n --count --timeout -h --help" ;;
                    top) opts="-p --pid -n --count --alloc -i --interval -c --frames --timeout -h --help" ;;
                    diff) opts="-n --count --alloc -h --help" ;;
                    *) opts="-p --pid --timeout -h --help" ;;
                esac ;;
            metrics) opts="-p --pid --all -h --help" ;;
            serve) opts="--listen --max-requests -h --help" ;;
        esac
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return 0
    fi

    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        return 0
    fi

    local pid
    case $cmd in
        help)
            [[ ${#args[@]} -eq 0 ]] && COMPREPLY=($(compgen -W "$commands" -- "$cur")) ;;
        get|watch)
            pid=$(_hakctl_pid) && COMPREPLY=($(compgen -W "$(_hakctl_names "$pid")" -- "$cur")) ;;
        profile)
            if [[ ${#args[@]} -eq 0 ]]; then
                COMPREPLY=($(compgen -W "start stop reset dump top diff" -- "$cur"))
            elif [[ ${args[0]} == diff && ${#args[@]} -lt 3 ]]; then
                COMPREPLY=($(compgen -f -- "$cur"))
            fi ;;
        dump|list)
            [[ ${#args[@]} -eq 0 ]] && pid=$(_hakctl_pid) &&
                COMPREPLY=($(compgen -W "$(_hakctl_names "$pid")" -- "$cur")) ;;
        set)
            pid=$(_hakctl_pid) || return 0
            if [[ ${#args[@]} -eq 0 ]]; then
                COMPREPLY=($(compgen -W "$(_hakctl_names "$pid" writable)" -- "$cur"))
            elif [[ ${#args[@]} -eq 1 ]]; then
                case ${args[0]} in
                    config.mode) COMPREPLY=($(compgen -W "minimal fast balanced learning research" -- "$cur")) ;;
                    config.features.*|*.enabled|learn.freeze) COMPREPLY=($(compgen -W "true false" -- "$cur")) ;;
                esac
            fi ;;
    esac
    return 0
}

_hakmem() {
    local -a words orig
    local cword cur notrim=
    _hakmem_words
    _hakmem_complete
    [[ -z $notrim ]] && _hakmem_trim
    return 0
}

_hakmem_complete() {
    local prev=
    [[ $cword -gt 0 ]] && prev=${words[cword - 1]}
    COMPREPLY=()

    # Where the command starts: the first word that is not an option or an
    # option's value, or the word after --.
    local i w start=
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        case $w in
            --) start=$((i + 1)); break ;;
            -m|--mode|-c|--conf|--profile) ((i++)) ;;
            -*) ;;
            *) start=$i; break ;;
        esac
    done
    if [[ -n $start && $cword -gt $start ]]; then
        if declare -F _command_offset >/dev/null; then
            notrim=1
            _command_offset "${orig[start]}"
        else
            COMPREPLY=($(compgen -f -- "$cur"))
        fi
        return 0
    fi
    if [[ -n $start ]]; then
        COMPREPLY=($(compgen -c -- "$cur"))
        return 0
    fi

    case $prev in
        -m|--mode)
            COMPREPLY=($(compgen -W "minimal fast balanced learning research" -- "$cur"))
            return 0 ;;
        -c|--conf)
            # The key being typed after the last comma; with ':' in
            # COMP_WORDBREAKS a value is its own word, left alone.
            local keys="mode tcache bigcache decay stats_page narenas bigcache_max_mb decay_ms
                tcache_max thp stats_print stats_print_opts stats_page_delay_ms
                stats_page_interval_ms background_thread crash_report abort_on_error
                debug_checks guard_sample fail_mmap_after validate prof prof_dump_at_exit"
            local head= key=$cur
            if [[ $cur == *,* ]]; then head=${cur%,*},; key=${cur##*,}; fi
            [[ $key == *:* ]] && return 0
            local k
            for k in $keys; do
                [[ $k == "$key"* ]] && COMPREPLY+=("$head$k:")
            done
            compopt -o nospace 2>/dev/null
            return 0 ;;
        --profile)
            COMPREPLY=($(compgen -f -- "$cur"))
            return 0 ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "-m --mode -c --conf --stats --profile -h --help -V --version --" -- "$cur"))
        return 0
    fi
    COMPREPLY=($(compgen -c -- "$cur"))
    return 0
}

complete -F _hakctl hakctl
complete -F _hakmem -o default hakmem
