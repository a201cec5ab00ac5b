#!/bin/sh
# make fuzz: builds each harness (test/fuzz/fuzz_NAME.c) with libFuzzer and
# AddressSanitizer against an ASan build of the library in OBJROOT/fuzz-build
# (hakmem's standard names prefixed there, so libFuzzer and ASan keep
# malloc), then runs it for FUZZ_SECONDS (default 60) from a working copy of
# its corpus.  Inputs that crash land in fuzz-build/artifacts/NAME/; copy
# them into test/fuzz/corpus/NAME/ (named crash-<what>) once fixed, so that
# make check replays them for good.
# Without a clang that links -fsanitize=fuzzer it says why and succeeds.
# Usage: run-fuzz.sh SRCROOT OBJROOT NAME...   (FUZZ_CC, FUZZ_SECONDS,
# FUZZ_JOBS (parallel workers per harness, default 1), FUZZ_ARGS extra
# libFuzzer flags)
srcroot=$1; objroot=$2; shift 2
cc=${FUZZ_CC:-clang}
secs=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-1}
fb=${objroot}fuzz-build

if ! command -v "$cc" >/dev/null 2>&1; then
  echo "fuzz: skipped: no $cc (apt-get install clang, or FUZZ_CC=...)"
  exit 0
fi
mkdir -p "$fb"
probe="$fb/probe.c"
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe"
if ! "$cc" -fsanitize=fuzzer,address -o "$fb/probe" "$probe" >"$fb/probe.log" 2>&1; then
  echo "fuzz: skipped: $cc cannot link -fsanitize=fuzzer ($(head -n 1 "$fb/probe.log"));"
  echo "fuzz:   on Debian the runtime is in libclang-rt-NN-dev (apt-get install libclang-rt-14-dev)"
  exit 0
fi

echo "fuzz: building the library with $cc, ASan and coverage in $fb"
if [ ! -f "$fb/Makefile" ] || [ "$srcroot/Makefile.in" -nt "$fb/Makefile" ] || [ "$srcroot/configure" -nt "$fb/Makefile" ]; then
  (cd "$fb" && "$srcroot/configure" CC="$cc" --enable-sanitizer=address >"$fb/configure.log" 2>&1) ||
    { echo "fuzz: configure failed (see $fb/configure.log)"; exit 1; }
fi
fcflags="-g -O1 -fsanitize=fuzzer-no-link"
make -C "$fb" CFLAGS="$fcflags" lib/libhakmem.a bin/hakctl_page.o >"$fb/build.log" 2>&1 ||
  { echo "fuzz: library build failed (see $fb/build.log)"; exit 1; }

status=0
for name in "$@"; do
  bin="$fb/fuzz_$name"
  "$cc" -fsanitize=fuzzer,address -fno-omit-frame-pointer -g -O1 -std=gnu11 -D_GNU_SOURCE \
    -I"$fb/include" -I"$srcroot/include" -I"$fb/src" -I"$srcroot/src" -I"$srcroot/bin" \
    -o "$bin" "$srcroot/test/fuzz/fuzz_$name.c" "$fb/bin/hakctl_page.o" "$fb/lib/libhakmem.a" \
    -lpthread -lrt >"$fb/fuzz_$name.build.log" 2>&1 ||
    { echo "fuzz $name: build failed (see $fb/fuzz_$name.build.log)"; status=1; continue; }
  work="$fb/corpus/$name"
  art="$fb/artifacts/$name"
  mkdir -p "$work" "$art"
  cp "$srcroot/test/fuzz/corpus/$name/"* "$work/" 2>/dev/null
  before=$(ls "$art" | wc -l)
  echo "fuzz $name: $secs s ($jobs worker(s)), corpus $(ls "$work" | wc -l) inputs"
  log="$fb/fuzz_$name.log"
  if [ "$jobs" -gt 1 ]; then
    (cd "$fb" && "$bin" -max_total_time="$secs" -close_fd_mask=3 -timeout=20 -rss_limit_mb=4096 \
      -print_final_stats=1 -artifact_prefix="$art/" -jobs="$jobs" -workers="$jobs" $FUZZ_ARGS "$work" >"$log" 2>&1)
    cat "$fb"/fuzz-*.log >>"$log" 2>/dev/null
    rm -f "$fb"/fuzz-*.log
  else
    "$bin" -max_total_time="$secs" -close_fd_mask=3 -timeout=20 -rss_limit_mb=4096 \
      -print_final_stats=1 -artifact_prefix="$art/" $FUZZ_ARGS "$work" >"$log" 2>&1
  fi
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{s += $2} END {print s + 0}')
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1)
  after=$(ls "$art" | wc -l)
  found=$((after - before))
  echo "fuzz $name: $execs executions, $cov, corpus now $(ls "$work" | wc -l) inputs, $found new finding(s)"
  if [ "$found" -gt 0 ]; then
    status=1
    echo "fuzz $name: findings in $art (log: $log):"
    ls "$art" | sed 's/^/  /'
    grep -E 'ERROR: |SUMMARY: |deadly signal|Test unit written' "$log" | head -n 10 | sed 's/^/  /'
  fi
done
exit $status
