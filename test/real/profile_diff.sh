#!/bin/sh
# hakctl profile diff OLD NEW on files made here (no process, no
# LD_PRELOAD: it runs in sanitizer builds too): the stack that grew most
# comes first in folded files, in heap profiles (gperftools' layout that
# hakmem writes, and jemalloc's heap_v2 that it wrote before, scaled by the
# sample period) and between one of each; -n limits the rows.  A missing,
# empty, binary, truncated or corrupt file, or a directory, is one line on
# standard error naming the file and exit status 1; so is every one of 300
# random mutations of good files (python3; never a crash).  Last, every
# profile subcommand, format and option is in hakctl's usage, its manual
# page (doc/hakctl.1) and its bash completion.
#
# Environment (from test/run-tests.sh): HAKMEM_OBJROOT, HAKMEM_SRCROOT.
# Ends with "N passed, N failed[, N skipped]".
. "$(dirname "$0")/../src/real_common.sh"
hakctl="${objroot}bin/hakctl"
srcroot=${HAKMEM_SRCROOT:-./}
TESTS="profile_diff_folded_growth_first profile_diff_heap_growth_first profile_diff_jemalloc_layout
profile_diff_mixed_formats profile_diff_rows_limit profile_diff_missing_file profile_diff_empty_file
profile_diff_binary_file profile_diff_truncated_folded profile_diff_truncated_heap
profile_diff_corrupt_files profile_diff_survives_mutations profile_cli_documented"
[ -x "$hakctl" ] || fail_all "$hakctl not built" $TESTS
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-diff.XXXXXX") || fail_all "mktemp failed" $TESTS
trap cleanup EXIT
trap 'cleanup; exit 1' INT TERM
limit=""
command -v timeout >/dev/null 2>&1 && limit="timeout 60"
# diff OLD NEW [OPTION...]: output in $tmp/out, errors in $tmp/err; prints the exit status.
diff_rc() { $limit "$hakctl" profile diff "$@" >"$tmp/out" 2>"$tmp/err"; echo $?; }
# first_row: the FUNCTION column of the first row under the heading.
first_row() { awk '/^ *GROWTH/ { getline; print $4; exit }' "$tmp/out"; }

cat >"$tmp/old.folded" <<'EOF'
_start;main;site_a 1048576
_start;main;site_b 4194304
_start;main;build;site_c 2097152
EOF
cat >"$tmp/new.folded" <<'EOF'
_start;main;site_a 67108864
_start;main;site_b 8388608
_start;main;build;site_c 1048576
_start;main;site_d 65536
EOF
rc=$(diff_rc "$tmp/old.folded" "$tmp/new.folded")
sed 's/^/# /' "$tmp/out"
if [ "$rc" = 0 ] && [ "$(first_row)" = site_a ] &&
   grep -Eq '^ *\+66060288 +1048576 +67108864 +site_a +_start;main$' "$tmp/out" &&
   grep -Eq '^ *-1048576 .* site_c +_start;main;build$' "$tmp/out"; then
  pass profile_diff_folded_growth_first
else
  fail profile_diff_folded_growth_first "exit $rc, first row '$(first_row)': $(tr '\n' '|' <"$tmp/err")"
fi

# Heap profiles, sampled at 1 byte: a block of b bytes is sampled with
# probability 1 - exp(-b), 1 for b >= 64, so the counts are the bytes.
# Addresses outside the mappings keep their hex names.
cat >"$tmp/old.heap" <<'EOF'
heap profile: 12: 12288 [40: 40960] @ heap_v2/1
10: 10240 [20: 20480] @ 0x1000 0x2000
2: 2048 [20: 20480] @ 0x3000 0x2000

MAPPED_LIBRARIES:
EOF
cat >"$tmp/new.heap" <<'EOF'
heap profile: 42: 43008 [80: 81920] @ heap_v2/1
10: 10240 [30: 30720] @ 0x1000 0x2000
32: 32768 [50: 51200] @ 0x3000 0x2000

MAPPED_LIBRARIES:
00400000-00401000 r-xp 00000000 00:00 0 /nonexistent/prog
EOF
rc=$(diff_rc "$tmp/old.heap" "$tmp/new.heap")
sed 's/^/# /' "$tmp/out"
rc2=$(diff_rc "$tmp/old.heap" "$tmp/new.heap" --alloc)
first_alloc=$(first_row)
if [ "$rc" = 0 ] && diff_rc "$tmp/old.heap" "$tmp/new.heap" >/dev/null &&
   grep -Eq '^ *\+30720 +2048 +32768 +0x3000 +0x2000$' "$tmp/out" && [ "$rc2" = 0 ] && [ "$first_alloc" = 0x3000 ]; then
  pass profile_diff_heap_growth_first
else
  fail profile_diff_heap_growth_first "exit $rc/$rc2, --alloc first '$first_alloc': $(tr '\n' '|' <"$tmp/err")"
fi

# The same counts in jemalloc's heap_v2 layout (per-thread lines ignored),
# at a period of 512 KiB: 32 blocks of 1 KiB stand for 32 / (1 - exp(-1/512))
# = 16400 blocks, 16793640 bytes.
cat >"$tmp/new.jemalloc" <<'EOF'
heap_v2/524288
  t*: 42: 43008 [80: 81920]
  t0: 42: 43008 [80: 81920]
@ 0x1000 0x2000
  t*: 10: 10240 [30: 30720]
@ 0x3000 0x2000
  t*: 32: 32768 [50: 51200]
  t0: 32: 32768 [50: 51200]

MAPPED_LIBRARIES:
EOF
rc=$(diff_rc "$tmp/old.heap" "$tmp/new.jemalloc")
grow=$(awk '$4 == "0x3000" { print $3; exit }' "$tmp/out")
if [ "$rc" = 0 ] && [ "$(first_row)" = 0x3000 ] && [ -n "$grow" ] &&
   awk -v g="$grow" 'BEGIN { exit !(g > 16793000 && g < 16794300) }'; then
  pass profile_diff_jemalloc_layout
else
  fail profile_diff_jemalloc_layout "exit $rc, first row '$(first_row)', new bytes '$grow': $(tr '\n' '|' <"$tmp/err")"
fi

# A folded file against a heap file whose frames have the same names.
printf '0x2000;0x3000 1024\n' >"$tmp/old2.folded"
rc=$(diff_rc "$tmp/old2.folded" "$tmp/new.heap")
if [ "$rc" = 0 ] && grep -Eq '^ *\+31744 +1024 +32768 +0x3000' "$tmp/out" && grep -q 'note:' "$tmp/err"; then
  pass profile_diff_mixed_formats
else
  fail profile_diff_mixed_formats "exit $rc: $(head -n 4 "$tmp/out" | tr '\n' '|')"
fi

rc=$(diff_rc "$tmp/old.folded" "$tmp/new.folded" -n 2)
rows=$(awk '/^ *GROWTH/ { on = 1; next } on && !/\(total\)/ { n++ } END { print n + 0 }' "$tmp/out")
if [ "$rc" = 0 ] && [ "$rows" = 2 ] && grep -q '(total)' "$tmp/out"; then
  pass profile_diff_rows_limit
else
  fail profile_diff_rows_limit "exit $rc, $rows rows"
fi

# bad NAME FILE WORDS...: exit 1, one line on stderr naming FILE and
# matching WORDS, nothing on stdout.
bad() {
  name=$1 file=$2 words=$3
  rc=$(diff_rc "$tmp/old.folded" "$file")
  if [ "$rc" = 1 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -q "^hakctl: profile diff: $file: .*$words" "$tmp/err" &&
     [ ! -s "$tmp/out" ]; then
    pass "$name"
  else
    fail "$name" "exit $rc: $(tr '\n' '|' <"$tmp/err")"
  fi
}
bad profile_diff_missing_file "$tmp/nonexistent" "No such file"
: >"$tmp/empty"
bad profile_diff_empty_file "$tmp/empty" "empty"
head -c 2048 "$hakctl" >"$tmp/binary"
bad profile_diff_binary_file "$tmp/binary" "binary"
head -c 50 "$tmp/new.folded" >"$tmp/cut.folded" # in the middle of a number
bad profile_diff_truncated_folded "$tmp/cut.folded" "truncated"
head -n 3 "$tmp/new.heap" >"$tmp/cut.heap"
bad profile_diff_truncated_heap "$tmp/cut.heap" "truncated"

# Corrupt: text that is no profile, a bad header, bad counts, bad
# addresses, a negative count, a directory.
bad=""
printf 'hello world\n' >"$tmp/c1"
printf 'heap profile: 1: 2 [3: 4] @ heap_v2/0\n\nMAPPED_LIBRARIES:\n' >"$tmp/c2"
printf 'heap profile: 1: 2 [3: 4] @ heap_v2/1\n1: x [3: 4] @ 0x1\nMAPPED_LIBRARIES:\n' >"$tmp/c3"
printf 'heap profile: 1: 2 [3: 4] @ heap_v2/1\n1: 2 [3: 4] @ 0xzz\nMAPPED_LIBRARIES:\n' >"$tmp/c4"
printf 'heap profile: 1: 2 [3: 4] @ heap_v2/1\n-1: 2 [3: 4] @ 0x1\nMAPPED_LIBRARIES:\n' >"$tmp/c5"
printf 'main;f 12abc\n' >"$tmp/c6"
printf 'heap_v2/524288\n@ 0x1\n' >"$tmp/c7"
for f in c1 c2 c3 c4 c5 c6 c7; do
  rc=$(diff_rc "$tmp/old.folded" "$tmp/$f")
  { [ "$rc" = 1 ] && grep -q "$tmp/$f" "$tmp/err"; } || bad="$bad; $f: exit $rc $(tr '\n' '|' <"$tmp/err")"
done
rc=$(diff_rc "$tmp" "$tmp/new.folded")
{ [ "$rc" = 1 ] && grep -q 'not a regular file' "$tmp/err"; } || bad="$bad; a directory: exit $rc"
if [ -z "$bad" ]; then pass profile_diff_corrupt_files; else fail profile_diff_corrupt_files "${bad#; }"; fi

# Random mutations: bytes changed, separators and big numbers inserted,
# spans cut, the end cut off.  Exit 0 or 1, never a signal.
if ! command -v python3 >/dev/null 2>&1; then
  skip profile_diff_survives_mutations "python3 not installed"
else
  $limit python3 - "$hakctl" "$tmp" >"$tmp/fuzz.out" 2>&1 <<'EOF'
import os, random, subprocess, sys
hakctl, tmp = sys.argv[1], sys.argv[2]
seeds = [open(f"{tmp}/{n}", "rb").read() for n in ("new.folded", "new.heap", "new.jemalloc")]
tokens = [b" ", b";", b"\n", b"0x", b"@", b"[", b"]", b":", b"-1", b"\0", b"\xff",
          b"99999999999999999999999", b"heap profile:", b"heap_v2/", b"MAPPED_LIBRARIES:\n",
          b"00400000-00401000 r-xp 00000000 00:00 0 /dev/zero\n"]
# A sanitizer's report must not pass for exit status 1 (a bad file).
env = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":exitcode=86",
           UBSAN_OPTIONS=os.environ.get("UBSAN_OPTIONS", "") + ":exitcode=87")
rng = random.Random(17)
crashes = 0
for i in range(300):
    d = bytearray(rng.choice(seeds))
    for _ in range(rng.randint(1, 8)):
        p, op = rng.randrange(len(d) + 1), rng.random()
        if op < 0.3 and p < len(d): d[p] = rng.randrange(256)
        elif op < 0.6: d[p:p] = rng.choice(tokens)
        elif op < 0.8: del d[p:p + rng.randint(1, 40)]
        else: del d[p:]
    with open(f"{tmp}/mutant", "wb") as f: f.write(d)
    r = subprocess.run([hakctl, "profile", "diff", f"{tmp}/new.folded", f"{tmp}/mutant"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    if r.returncode not in (0, 1):
        crashes += 1
        with open(f"{tmp}/crash.{crashes}", "wb") as f: f.write(d)
        print(f"mutant {i}: exit {r.returncode}")
print(f"{crashes} crashes")
EOF
  if grep -qx '0 crashes' "$tmp/fuzz.out"; then pass profile_diff_survives_mutations
  else fail profile_diff_survives_mutations "$(tail -n 3 "$tmp/fuzz.out" | tr '\n' '|')"; fi
fi

# The usage names the short forms; the manual and the completion all.
bad=""
"$hakctl" profile --help >"$tmp/usage" 2>&1
for w in start stop reset dump top diff pprof folded text svg --rate --format --alloc -o -n -i -c \
         --output --count --interval --frames; do
  roff=$(printf '%s' "$w" | sed 's/-/\\-/g')
  grep -qF -e "$roff" "${srcroot}doc/hakctl.1" || bad="$bad; '$roff' not in doc/hakctl.1"
  grep -qwF -e "$w" "${srcroot}bin/completion.bash" || bad="$bad; '$w' not in bin/completion.bash"
  case $w in --output|--count|--interval|--frames) continue ;; esac
  grep -qwF -e "$w" "$tmp/usage" || bad="$bad; '$w' not in hakctl profile --help"
done
if [ -z "$bad" ]; then pass profile_cli_documented; else fail profile_cli_documented "${bad#; }"; fi
finish
