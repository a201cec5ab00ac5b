#!/bin/sh
# Bash completion (bin/completion.bash): sourced in bash, it registers
# _hakctl and _hakmem (complete -p); each case sets COMP_WORDS/COMP_CWORD,
# calls the registered function and compares COMPREPLY: hakctl's commands
# and per-command options (profile's per subcommand, its formats, files
# for diff), pids from "hakctl ps", control names from
# "hakctl -p PID list" for get, watch and set (writable names only, then
# the mode names), hakmem's options, modes and HAKMEM_CONF keys (also after
# a ':' that splits the word), then the command.  The live cases run
# against test/src/hakctl_child under LD_PRELOAD (skipped where the
# preload is not meaningful).
#
# Environment (from test/run-tests.sh): HAKMEM_OBJROOT, HAKMEM_SRCROOT,
# SANITIZER.  Ends with "N passed, N failed[, N skipped]".
. "$(dirname "$0")/../src/real_common.sh"
srcroot=${HAKMEM_SRCROOT:-./}
comp="${srcroot}bin/completion.bash"
hakctl="${objroot}bin/hakctl"
hm="${objroot}bin/hakmem"
child="${objroot}test/src/hakctl_child"
STATIC="completion_registered completion_hakctl_commands completion_hakctl_options completion_hakctl_profile
completion_hakmem_options completion_hakmem_conf_keys completion_hakmem_command"
LIVE="completion_hakctl_pids completion_hakctl_get_names completion_hakctl_set_names"

command -v bash >/dev/null 2>&1 || skip_all "bash not installed" $STATIC $LIVE
[ -x "$hakctl" ] || fail_all "$hakctl not built" $STATIC $LIVE
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-comp.XXXXXX") || fail_all "mktemp failed" $STATIC $LIVE
cpid=
stop_child() { [ -n "$cpid" ] && kill -TERM "$cpid" 2>/dev/null; cpid=; }
trap 'stop_child; cleanup' EXIT
trap 'stop_child; cleanup; exit 1' INT TERM

# comp_run CWORD WORD...: COMPREPLY of the registered function, one a line.
cat >"$tmp/run.bash" <<'EOF'
. "$1" || exit 3
shift
COMP_CWORD=$1; shift
COMP_WORDS=("$@")
COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
spec=$(complete -p "${1##*/}" 2>/dev/null) || { echo "no spec for ${1##*/}"; exit 4; }
fn=$(echo "$spec" | sed -n 's/.*-F \([^ ]*\).*/\1/p')
COMPREPLY=()
"$fn" "${1##*/}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
EOF
comp_run() { timeout 20 bash --norc --noprofile "$tmp/run.bash" "$comp" "$@" 2>"$tmp/comp.err"; }
# expect NAME WANT CWORD WORD...: COMPREPLY, sorted and joined by spaces,
# is WANT; a mismatch is added to $bad.
expect() {
  want=$1; shift
  got=$(comp_run "$@" | sort -u | tr '\n' ' ' | sed 's/ $//')
  [ "$got" = "$want" ] || bad="$bad; [$*]: got '$got', want '$want' $(head -n 1 "$tmp/comp.err")"
}
# expect_has WANT CWORD WORD...: WANT among the COMPREPLY lines.
expect_has() {
  want=$1; shift
  comp_run "$@" >"$tmp/has.out"
  grep -qx -- "$want" "$tmp/has.out" || bad="$bad; [$*]: no '$want' in $(head -n 5 "$tmp/has.out" | tr '\n' ' ')"
}

out=$(bash --norc --noprofile -c '. "$1" && complete -p hakctl hakmem' sh "$comp" 2>&1)
if echo "$out" | grep -q -- '-F _hakctl hakctl$' && echo "$out" | grep -q -- '-F _hakmem hakmem$'; then
  pass completion_registered
else
  fail completion_registered "$out"
fi

bad=""
expect "dump get help list metrics profile ps serve set top watch" 1 "$hakctl" ""
expect "get" 1 "$hakctl" g
expect "serve set" 3 "$hakctl" -p 1 se
expect "dump get help list metrics profile ps serve set top watch" 2 "$hakctl" help ""
if [ -z "$bad" ]; then pass completion_hakctl_commands; else fail completion_hakctl_commands "${bad#; }"; fi

bad=""
expect "--help --listen --max-requests" 2 "$hakctl" serve --
expect "--help --human --json --pid" 4 "$hakctl" -p 1 get --
expect "--json" 4 "$hakctl" -p 1 get --j
expect "--help --pid --version" 1 "$hakctl" --
expect "--all --help --json" 2 "$hakctl" ps --
expect "127.0.0.1:9464" 3 "$hakctl" serve --listen 1
if [ -z "$bad" ]; then pass completion_hakctl_options; else fail completion_hakctl_options "${bad#; }"; fi

# profile: subcommands, options per subcommand, formats, files for diff.
bad=""
: >"$tmp/old.heap"
expect "diff dump reset start stop top" 4 "$hakctl" -p 1 profile ""
expect "diff dump" 2 "$hakctl" profile d
expect "folded pprof svg text" 6 "$hakctl" -p 1 profile dump --format ""
expect "--frames" 5 "$hakctl" -p 1 profile top --fr
expect "--alloc --count --help -h -n" 3 "$hakctl" profile diff -
expect "$tmp/old.heap" 3 "$hakctl" profile diff "$tmp/old."
expect "" 6 "$hakctl" -p 1 profile top -i 5
if [ -z "$bad" ]; then pass completion_hakctl_profile; else fail completion_hakctl_profile "${bad#; }"; fi

bad=""
expect "balanced fast learning minimal research" 2 "$hm" -m ""
expect "--stats" 1 "$hm" --st
expect "-- --conf --help --mode --profile --stats --version" 1 "$hm" --
expect "--conf" 3 "$hm" -m fast --c
if [ -z "$bad" ]; then pass completion_hakmem_options; else fail completion_hakmem_options "${bad#; }"; fi

bad=""
expect "decay: decay_ms:" 2 "$hm" -c deca
expect "stats_page: stats_page_delay_ms: stats_page_interval_ms:" 2 "$hm" -c stats_pa
# COMP_WORDBREAKS splits "thp:0,deca" into thp, :, 0,deca: the reply is for
# the last piece.
expect "0,decay: 0,decay_ms:" 4 "$hm" -c thp : 0,deca
if [ -z "$bad" ]; then pass completion_hakmem_conf_keys; else fail completion_hakmem_conf_keys "${bad#; }"; fi

bad=""
expect_has sh 1 "$hm" s
expect_has sh 3 "$hm" -m fast s
expect_has sh 2 "$hm" -- s
if [ -z "$bad" ]; then pass completion_hakmem_command; else fail completion_hakmem_command "${bad#; }"; fi

# ---- against a live page ----

live_skip=""
case "${SANITIZER:-no}" in
  address|thread) live_skip="LD_PRELOAD of a $SANITIZER-sanitized library is not meaningful" ;;
esac
[ -z "$live_skip" ] && [ ! -x "$child" ] && live_skip="$child not built (make tests)"
if [ -n "$live_skip" ]; then
  for t in $LIVE; do skip "$t" "$live_skip"; done
  finish
fi
timeout 60 env HAKMEM_CONF=stats_page:1,stats_page_delay_ms:0,stats_page_interval_ms:50,background_thread:1 \
  LD_PRELOAD="$lib" "$child" -d 60 >"$tmp/child.out" 2>&1 &
n=0
while [ $n -lt 100 ]; do
  cpid=$(sed -n 's/^ready //p' "$tmp/child.out" 2>/dev/null)
  [ -n "$cpid" ] && [ -f "/dev/shm/hakmem.$(id -u).$cpid" ] && break
  sleep 0.1; n=$((n + 1))
done
if [ -z "$cpid" ] || [ ! -f "/dev/shm/hakmem.$(id -u).$cpid" ]; then
  for t in $LIVE; do fail "$t" "the child made no page: $(tail -n 2 "$tmp/child.out")"; done
  finish
fi

bad=""
expect_has "$cpid" 2 "$hakctl" -p ""
expect_has "$cpid" 2 "$hakctl" --pid ""
if [ -z "$bad" ]; then pass completion_hakctl_pids; else fail completion_hakctl_pids "${bad#; }"; fi

bad=""
expect "stats.allocated" 4 "$hakctl" -p "$cpid" get stats.al
expect "tiny.class.3.stats.nmalloc" 4 "$hakctl" -p "$cpid" watch tiny.class.3.stats.nm
expect "tiny.class.3.stats.nmalloc" 5 "$hakctl" -p "$cpid" watch stats.allocated tiny.class.3.stats.nm
expect "version" 3 "$hakctl" "-p$cpid" get vers
expect "version" 5 "$hakctl" --pid = "$cpid" get vers
expect "stats.allocated" 4 "$hakctl" -p "$cpid" dump stats.al
expect "" 3 "$hakctl" get stats.al
if [ -z "$bad" ]; then pass completion_hakctl_get_names; else fail completion_hakctl_get_names "${bad#; }"; fi

bad=""
expect "config.mode" 4 "$hakctl" -p "$cpid" set config.m
expect "" 4 "$hakctl" -p "$cpid" set stats.al
expect "fast" 5 "$hakctl" -p "$cpid" set config.mode f
expect "false true" 5 "$hakctl" -p "$cpid" set config.features.tcache ""
if [ -z "$bad" ]; then pass completion_hakctl_set_names; else fail completion_hakctl_set_names "${bad#; }"; fi

stop_child
finish
