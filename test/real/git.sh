#!/bin/sh
# git under LD_PRELOAD=libhakmem.so: init, add ~170 files and a 2 MB file,
# three commits (edits, deletions, a rename), log, diff --stat, gc, fsck and
# cat-file in a scratch repository, checked against expected values and
# against the same session without hakmem (fixed dates: same commit ids).
#
# Environment (from test/run-tests.sh): HAKMEM_OBJROOT (build dir, trailing
# slash), HAKMEM_SRCROOT, SANITIZER.  Prints PASS/FAIL/SKIP lines and ends
# with "N passed, N failed[, N skipped]".

. "$(dirname "$0")/../src/real_common.sh"
TESTS="git_loaded git_commit_log git_gc_fsck git_content"
gate git $TESTS

# A private, deterministic git: no user or system config, fixed identities
# and dates, so commit ids are the same with and without hakmem.
export HOME="$tmp/home" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=Hak GIT_AUTHOR_EMAIL=hak@example.invalid
export GIT_COMMITTER_NAME=Hak GIT_COMMITTER_EMAIL=hak@example.invalid
export GIT_AUTHOR_DATE='2024-01-01T00:00:00 +0000' GIT_COMMITTER_DATE='2024-01-01T00:00:00 +0000'
mkdir -p "$HOME"

# gen DIR SEED COUNT: COUNT text files of a few KB under DIR/d<k>/
gen() {
  for k in 0 1 2 3 4 5 6 7 8 9; do mkdir -p "$1/d$k"; done
  awk -v dir="$1" -v seed="$2" -v n="$3" 'BEGIN {
    x = seed
    for (f = 0; f < n; f++) {
      d = dir "/d" (f % 10)
      name = sprintf("%s/f%03d.txt", d, f)
      lines = 20 + f % 80
      for (i = 0; i < lines; i++) {
        x = (x * 16807) % 2147483647
        printf "line %d of file %d: %d %s\n", i, f, x, substr("abcdefghijklmnopqrstuvwxyz", 1 + x % 26) >name
      }
      close(name)
    }
  }'
}

# run_git RUNNER DIR OUT: the whole session, outputs appended to OUT.
run_git() {
  r=$1; d=$2; o=$3
  mkdir -p "$d" && cd "$d" || return 1
  "$r" git init -q -b main . || return 1
  # no fsync (the disk is not under test), no automatic gc
  git config core.fsync none && git config gc.auto 0 || return 1
  gen "$d" 7 150
  # one big file: multi-megabyte buffers in zlib and pack-objects
  awk 'BEGIN { for (i = 0; i < 60000; i++) printf "%08d big file line %d\n", i * 7919 % 100000, i }' >big.txt
  "$r" git add -A && "$r" git commit -q -m initial || return 1
  awk 'BEGIN { for (f = 0; f < 150; f += 6) printf "d%d/f%03d.txt\n", f % 10, f }' |
    while read -r p; do echo "appended to $p" >>"$p"; done
  rm -f d1/f001.txt d1/f011.txt d1/f021.txt d1/f031.txt
  gen "$d/extra" 11 20
  "$r" git add -A && "$r" git commit -q -m second || return 1
  "$r" git mv d2 moved-d2 && "$r" git commit -q -m "third: rename" || return 1
  "$r" git log --format='%H %s' >>"$o" || return 1
  "$r" git diff --stat HEAD~2 HEAD | tail -n 1 >>"$o"
  "$r" git gc -q || return 1
  "$r" git count-objects -v | grep -E '^(count|packs):' >>"$o"
  "$r" git fsck --full --no-progress >>"$o" 2>&1 || { echo "fsck failed" >>"$o"; return 1; }
  "$r" git rev-list --all --objects | wc -l | tr -d ' ' | sed 's/^/objects /' >>"$o"
  "$r" git cat-file -p HEAD:moved-d2/f002.txt | cksum | sed 's/^/blob /' >>"$o"
  "$r" git cat-file -p HEAD:big.txt | cksum | sed 's/^/big /' >>"$o"
  cd "$tmp" || return 1
}

n=$(cd "$tmp" && pre git -c alias.maps='!grep -c libhakmem /proc/$PPID/maps' maps 2>"$tmp/loaded.err")
if [ "${n:-0}" -ge 1 ] 2>/dev/null; then
  pass git_loaded
else
  fail git_loaded "libhakmem not in git's maps ('$n'; $(head -n 1 "$tmp/loaded.err"))"
fi

: >"$tmp/pre.out"; : >"$tmp/base.out"
run_git pre "$tmp/pre" "$tmp/pre.out" 2>"$tmp/pre.err"
prc=$?
cd "$tmp"
run_git base "$tmp/base" "$tmp/base.out" 2>"$tmp/base.err"
brc=$?
cd "$tmp"

if [ $brc -ne 0 ]; then
  fail_all "the session without hakmem failed: $(head -n 1 "$tmp/base.err")" git_commit_log git_gc_fsck git_content
fi
complaint=$(preload_complaint "$tmp/pre.err")

subjects=$(sed -n '1,3s/^[0-9a-f]\{40\} //p' "$tmp/pre.out" | tr '\n' '|')
if [ $prc -ne 0 ]; then
  fail git_commit_log "git failed under hakmem: $(head -n 2 "$tmp/pre.err" | tr '\n' ' ')"
elif [ -n "$complaint" ]; then
  fail git_commit_log "$complaint"
elif [ "$subjects" != "third: rename|second|initial|" ]; then
  fail git_commit_log "log subjects '$subjects'"
elif [ "$(head -n 4 "$tmp/pre.out")" != "$(head -n 4 "$tmp/base.out")" ]; then
  fail git_commit_log "commit ids or diffstat differ from git without hakmem: $(diff "$tmp/base.out" "$tmp/pre.out" | head -n 3 | tr '\n' ' ')"
else
  pass git_commit_log
fi

if [ $prc -ne 0 ]; then
  fail git_gc_fsck "git failed under hakmem"
elif ! grep -qx 'count: 0' "$tmp/pre.out" || ! grep -qx 'packs: 1' "$tmp/pre.out"; then
  fail git_gc_fsck "after gc: $(grep -E '^(count|packs):' "$tmp/pre.out" | tr '\n' ' ')"
elif grep -q -i -e error -e missing -e broken -e 'fsck failed' "$tmp/pre.out"; then
  fail git_gc_fsck "fsck: $(grep -i -e error -e missing -e broken -e fsck "$tmp/pre.out" | head -n 2 | tr '\n' ' ')"
else
  pass git_gc_fsck
fi

want_blob=$(cksum <"$tmp/pre/moved-d2/f002.txt")
want_big=$(cksum <"$tmp/pre/big.txt")
if [ $prc -ne 0 ]; then
  fail git_content "git failed under hakmem"
elif ! grep -qx "blob $want_blob" "$tmp/pre.out" || ! grep -qx "big $want_big" "$tmp/pre.out"; then
  fail git_content "blobs read back differ from the work tree: $(grep -E '^(blob|big) ' "$tmp/pre.out" | tr '\n' ' ')"
elif ! cmp -s "$tmp/pre.out" "$tmp/base.out"; then
  fail git_content "session output differs from git without hakmem: $(diff "$tmp/base.out" "$tmp/pre.out" | head -n 3 | tr '\n' ' ')"
else
  pass git_content
fi

finish
