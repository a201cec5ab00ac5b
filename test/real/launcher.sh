#!/bin/sh
# The launcher, bin/hakmem (hakmem(1)): the command runs with libhakmem
# preloaded and its exit status comes back; -m, -c and --stats reach the
# library (the workload reports the mode it runs in); an existing
# LD_PRELOAD is kept after ours; usage errors exit 2, a missing command or
# library 127, a command that cannot run 126; --profile writes a heap profile; an
# install under DESTDIR runs its own library, also when the installed tree
# is moved and when the launcher is reached through a symbolic link.
#
# Environment (from test/run-tests.sh): HAKMEM_OBJROOT, HAKMEM_SRCROOT,
# SANITIZER.  Ends with "N passed, N failed[, N skipped]".
. "$(dirname "$0")/../src/real_common.sh"

TESTS="launcher_usage launcher_profile_writes_heap_profile launcher_exit_status launcher_preloads
launcher_env launcher_mode_reaches_library launcher_ld_preload_kept launcher_command_errors
launcher_missing_library launcher_destdir_install"
gate sh $TESTS
hm="${objroot}bin/hakmem"
child="${objroot}test/src/hakctl_child"
[ -x "$hm" ] || fail_all "$hm not built" $TESTS
libreal=$(cd "${objroot}lib" && pwd -P)
version=$(sed -n 's/^AC_INIT(\[hakmem\], \[\([^]]*\)\].*/\1/p' "${HAKMEM_SRCROOT:-./}configure.ac")
# run_rc CMD...: exit status on stdout; output in $tmp/rc.out and .err.
run_rc() { $to "$@" >"$tmp/rc.out" 2>"$tmp/rc.err"; echo $?; }

bad=""
rc=$(run_rc "$hm" -h); { [ "$rc" = 0 ] && grep -q '^usage: hakmem' "$tmp/rc.out"; } || bad="$bad; -h: $rc"
rc=$(run_rc "$hm" --help); [ "$rc" = 0 ] || bad="$bad; --help: $rc"
rc=$(run_rc "$hm" -V); { [ "$rc" = 0 ] && [ "$(cat "$tmp/rc.out")" = "hakmem $version" ]; } ||
  bad="$bad; -V: $rc '$(cat "$tmp/rc.out")', configure.ac says $version"
rc=$(run_rc "$hm"); { [ "$rc" = 2 ] && grep -q 'no command given' "$tmp/rc.err"; } || bad="$bad; no command: $rc"
rc=$(run_rc "$hm" -q true); { [ "$rc" = 2 ] && grep -q 'unknown option -q' "$tmp/rc.err"; } || bad="$bad; -q: $rc"
rc=$(run_rc "$hm" -m); [ "$rc" = 2 ] || bad="$bad; -m without a value: $rc"
rc=$(run_rc "$hm" -c); [ "$rc" = 2 ] || bad="$bad; -c without a value: $rc"
rc=$(run_rc "$hm" -m turbo true); { [ "$rc" = 2 ] && grep -q "unknown mode 'turbo'" "$tmp/rc.err"; } || bad="$bad; -m turbo: $rc"
# Options stop at the command: its own -h is its own.
rc=$(run_rc "$hm" sh -c 'echo "$1"' sh -h); { [ "$rc" = 0 ] && [ "$(cat "$tmp/rc.out")" = "-h" ]; } || bad="$bad; command's -h: $rc"
rc=$(run_rc "$hm" -- sh -c 'exit 0'); [ "$rc" = 0 ] || bad="$bad; --: $rc"
if [ -z "$bad" ]; then pass launcher_usage; else fail launcher_usage "${bad#; }"; fi

# --profile FILE: the live heap written at exit, heap_v2, mode 0600.
rc=$(cd "$tmp" && run_rc env -u HAKMEM_CONF "$hm" --profile prof.heap "$child" -d 0.1)
rc2=$(run_rc "$hm" --profile "$tmp/a,b" true)
perm=$(stat -c %a "$tmp/prof.heap" 2>/dev/null)
if [ "$rc" = 0 ] && head -n 1 "$tmp/prof.heap" 2>/dev/null | grep -q '^heap profile: .* @ heap_v2/' &&
   grep -q '^MAPPED_LIBRARIES:' "$tmp/prof.heap" && [ "$perm" = 600 ] &&
   [ "$rc2" = 2 ] && grep -q 'comma' "$tmp/rc.err"; then
  pass launcher_profile_writes_heap_profile
else
  fail launcher_profile_writes_heap_profile "exit $rc/$rc2, mode $perm, head: $(head -n 1 "$tmp/prof.heap" 2>&1)"
fi

bad=""
for want in 0 1 7 255; do
  rc=$(run_rc "$hm" sh -c "exit $want"); [ "$rc" = "$want" ] || bad="$bad; exit $want gave $rc"
done
rc=$(run_rc "$hm" sh -c 'kill -TERM $$'); [ "$rc" = 143 ] || bad="$bad; SIGTERM gave $rc"
# exec: the command is the launcher's process, not a child of it.
rc=$(run_rc sh -c 'echo $$; exec "$0" sh -c "echo \$\$"' "$hm")
[ "$(sed -n 1p "$tmp/rc.out")" = "$(sed -n 2p "$tmp/rc.out")" ] || bad="$bad; not exec'd: pids $(tr '\n' ' ' <"$tmp/rc.out")"
if [ -z "$bad" ]; then pass launcher_exit_status; else fail launcher_exit_status "${bad#; }"; fi

rc=$(run_rc env -u LD_PRELOAD "$hm" sh -c 'echo "$LD_PRELOAD"; cat /proc/self/maps')
pre1=$(head -n 1 "$tmp/rc.out")
if [ "$rc" = 0 ] && [ "$pre1" = "$libreal/libhakmem.so.0" ] && grep -q "$libreal/libhakmem.so" "$tmp/rc.out" &&
   [ -z "$(preload_complaint "$tmp/rc.err")" ]; then
  pass launcher_preloads
else
  fail launcher_preloads "exit $rc, LD_PRELOAD '$pre1' (want $libreal/libhakmem.so.0): $(head -n 2 "$tmp/rc.err")"
fi

bad=""
show='echo "$HAKMEM_MODE|$HAKMEM_CONF"'
out=$(env -u HAKMEM_MODE -u HAKMEM_CONF $to "$hm" -m fast -c decay_ms:50 -c narenas:2 sh -c "$show" 2>"$tmp/env.err")
[ "$out" = "fast|decay_ms:50,narenas:2" ] || bad="$bad; -m/-c gave '$out'"
out=$(env -u HAKMEM_MODE HAKMEM_CONF=thp:0 $to "$hm" -cdecay_ms:0 --conf=narenas:1 sh -c "$show" 2>>"$tmp/env.err")
[ "$out" = "|thp:0,decay_ms:0,narenas:1" ] || bad="$bad; inherited HAKMEM_CONF: '$out'"
out=$(env -u HAKMEM_MODE HAKMEM_CONF=mode:minimal $to "$hm" --mode=fast -c thp:0 sh -c "$show" 2>>"$tmp/env.err")
[ "$out" = "fast|mode:minimal,mode:fast,thp:0" ] || bad="$bad; inherited mode: '$out'"
out=$(env -u HAKMEM_MODE -u HAKMEM_CONF $to "$hm" sh -c "$show" 2>>"$tmp/env.err")
[ "$out" = "|" ] || bad="$bad; no options set '$out'"
[ -s "$tmp/env.err" ] && bad="$bad; warnings: $(head -n 2 "$tmp/env.err")"
# (A program that leaves by _exit, as dash does, runs no destructor and
# prints no report: the workload exits normally.)
if [ -x "$child" ]; then
  env -u HAKMEM_CONF $to "$hm" --stats "$child" -d 0.1 >/dev/null 2>"$tmp/stats.err"
  grep -q "___ hakmem $version statistics ___" "$tmp/stats.err" || bad="$bad; --stats printed no report: $(head -n 2 "$tmp/stats.err")"
else
  bad="$bad; $child not built (make tests)"
fi
if [ -z "$bad" ]; then pass launcher_env; else fail launcher_env "${bad#; }"; fi

if [ ! -x "$child" ]; then
  fail launcher_mode_reaches_library "$child not built (make tests)"
else
  bad=""
  env -u HAKMEM_MODE -u HAKMEM_CONF $to "$hm" -m fast "$child" -d 0.2 >"$tmp/c1.out" 2>&1
  grep -qx 'mode fast' "$tmp/c1.out" || bad="$bad; -m fast: $(tr '\n' '|' <"$tmp/c1.out")"
  env -u HAKMEM_MODE HAKMEM_CONF=mode:minimal $to "$hm" -m learning "$child" -d 0.2 >"$tmp/c2.out" 2>&1
  grep -qx 'mode learning' "$tmp/c2.out" || bad="$bad; -m learning over mode:minimal: $(tr '\n' '|' <"$tmp/c2.out")"
  env -u HAKMEM_MODE -u HAKMEM_CONF $to "$hm" -c mode:minimal "$child" -d 0.2 >"$tmp/c3.out" 2>&1
  grep -qx 'mode minimal' "$tmp/c3.out" || bad="$bad; -c mode:minimal: $(tr '\n' '|' <"$tmp/c3.out")"
  if [ -z "$bad" ]; then pass launcher_mode_reaches_library; else fail launcher_mode_reaches_library "${bad#; }"; fi
fi

# A library that exists (found on the loader's own path): ours first, then it.
other=libm.so.6
out=$(LD_PRELOAD=$other $to "$hm" sh -c 'echo "$LD_PRELOAD"; grep -c -e libhakmem -e libm\\. /proc/self/maps' 2>"$tmp/pre.err")
first=$(echo "$out" | head -n 1)
if [ "$first" = "$libreal/libhakmem.so.0:$other" ] && [ -z "$(preload_complaint "$tmp/pre.err")" ]; then
  pass launcher_ld_preload_kept
else
  fail launcher_ld_preload_kept "LD_PRELOAD '$first': $(head -n 1 "$tmp/pre.err")"
fi

bad=""
rc=$(run_rc "$hm" hakmem-no-such-command-here); { [ "$rc" = 127 ] && grep -q 'command not found' "$tmp/rc.err"; } ||
  bad="$bad; unknown name: $rc $(cat "$tmp/rc.err")"
rc=$(run_rc "$hm" "$tmp/nope"); [ "$rc" = 127 ] || bad="$bad; missing path: $rc"
printf 'echo hi\n' >"$tmp/noexec"; chmod 644 "$tmp/noexec"
rc=$(run_rc "$hm" "$tmp/noexec"); { [ "$rc" = 126 ] && grep -q 'Permission denied' "$tmp/rc.err"; } || bad="$bad; not executable: $rc"
rc=$(run_rc "$hm" "$tmp"); [ "$rc" = 126 ] || bad="$bad; a directory: $rc"
# As execvp: a name is looked up on PATH, skipping a non-executable file.
mkdir -p "$tmp/p1" "$tmp/p2"
cp "$tmp/noexec" "$tmp/p1/hkcmd"; printf '#!/bin/sh\necho from-p2\n' >"$tmp/p2/hkcmd"; chmod 755 "$tmp/p2/hkcmd"
out=$(PATH="$tmp/p1:$tmp/p2:$PATH" $to "$hm" hkcmd 2>&1); [ "$out" = from-p2 ] || bad="$bad; PATH lookup: '$out'"
if [ -z "$bad" ]; then pass launcher_command_errors; else fail launcher_command_errors "${bad#; }"; fi

mkdir -p "$tmp/lonely/bin"
cp "$hm" "$tmp/lonely/bin/hakmem"
rc=$(run_rc "$tmp/lonely/bin/hakmem" true)
if [ "$rc" = 127 ] && grep -q 'libhakmem not found' "$tmp/rc.err"; then
  pass launcher_missing_library
else
  fail launcher_missing_library "exit $rc: $(cat "$tmp/rc.err")"
fi

# make install DESTDIR=...: the installed launcher preloads the installed
# library, also once the tree is moved and through a symbolic link.
if ! command -v make >/dev/null 2>&1; then
  skip launcher_destdir_install "make not installed"
else
  dest="$tmp/dest"
  if ! $to make -s -C "$objroot" install DESTDIR="$dest" >"$tmp/install.log" 2>&1; then
    fail launcher_destdir_install "make install failed: $(tail -n 3 "$tmp/install.log" | tr '\n' '|')"
  else
    bad=""
    ihm=$(find "$dest" -path '*/bin/hakmem' -type f | head -n 1)
    ilib=$(find "$dest" -name libhakmem.so.0 -type f | head -n 1)
    if [ -z "$ihm" ] || [ -z "$ilib" ]; then
      bad="$bad; launcher '$ihm' or library '$ilib' not installed"
    else
      [ -x "$ihm" ] || bad="$bad; $ihm not executable"
      want=$(cd "$(dirname "$ilib")" && pwd -P)/libhakmem.so.0
      out=$($to "$ihm" sh -c 'echo "$LD_PRELOAD"' 2>&1)
      [ "$out" = "$want" ] || bad="$bad; installed launcher preloads '$out', want $want"
      $to "$ihm" cat /proc/self/maps 2>/dev/null | grep -q "$want" || bad="$bad; $want not mapped"
      rc=$(run_rc "$ihm" sh -c 'exit 5'); [ "$rc" = 5 ] || bad="$bad; installed exit status $rc"
      # Moved: the copy's own library, not the old place's.
      mv "$dest" "$tmp/moved"
      mhm="$tmp/moved${ihm#"$dest"}"
      mwant=$(cd "$(dirname "$tmp/moved${ilib#"$dest"}")" && pwd -P)/libhakmem.so.0
      out=$($to "$mhm" sh -c 'echo "$LD_PRELOAD"' 2>&1)
      [ "$out" = "$mwant" ] || bad="$bad; moved launcher preloads '$out', want $mwant"
      ln -s "$mhm" "$tmp/hm-link"
      out=$($to "$tmp/hm-link" sh -c 'echo "$LD_PRELOAD"' 2>&1)
      [ "$out" = "$mwant" ] || bad="$bad; through a symlink: '$out'"
      # Found on PATH by its bare name.
      out=$(PATH="$(dirname "$mhm"):$PATH" $to hakmem sh -c 'echo "$LD_PRELOAD"' 2>&1)
      [ "$out" = "$mwant" ] || bad="$bad; from PATH: '$out'"
      man=$(find "$tmp/moved" -path '*/man1/hakmem.1' -type f | head -n 1)
      [ -n "$man" ] || bad="$bad; hakmem.1 not installed"
    fi
    if [ -z "$bad" ]; then pass launcher_destdir_install; else fail launcher_destdir_install "${bad#; }"; fi
  fi
fi

finish
