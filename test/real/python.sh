#!/bin/sh
# python3 under LD_PRELOAD=libhakmem.so with PYTHONMALLOC=malloc (so every
# object goes through malloc, not pymalloc's arenas): a workload of large
# dicts, strings, lists and bytearrays, four threads building dicts, and a
# checksum of everything compared with the same script run without hakmem.
#
# Environment (from test/run-tests.sh): HAKMEM_OBJROOT (build dir, trailing
# slash), HAKMEM_SRCROOT, SANITIZER.  Prints PASS/FAIL/SKIP lines and ends
# with "N passed, N failed[, N skipped]".

. "$(dirname "$0")/../src/real_common.sh"
TESTS="python_workload python_threads_checksum python_malloc_is_hakmem"
gate python3 $TESTS

# The real interpreter, not a pyenv-style wrapper script.
py=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
[ -x "$py" ] || skip_all "python3 does not report its executable" $TESTS

cat >"$tmp/work.py" <<'EOF'
import hashlib, sys, threading, gc

h = hashlib.sha256()
def mix(x):
    h.update(repr(x).encode())

# 1. A large dict of strings, grown, partly deleted, regrown, freed.
d = {}
for i in range(250000):
    d["key%07d" % i] = ("v%d" % i) * (1 + i % 13)
mix(sum(len(v) for v in d.values()))
for i in range(0, 250000, 3):
    del d["key%07d" % i]
for i in range(0, 250000, 6):
    d["new%07d" % i] = i
mix(len(d))
mix(sorted(d)[:: 9973])
del d
gc.collect()

# 2. Strings: build, split, join, slice, replicate (16 MB), hash.
s = "".join(chr(65 + (i * 7) % 26) for i in range(1000000))
parts = s.split("A")
mix(len(parts))
mix(s[::4999])
big = s * 16
mix(hashlib.sha256(big.encode()).hexdigest())
joined = "|".join(parts[:50000])
mix(len(joined))
del s, parts, big, joined

# 3. Lists of lists, sorted, sliced, freed.
lst = [list(range(i % 64)) for i in range(120000)]
mix(sum(map(len, lst)))
lst.sort(key=lambda l: (len(l), l[-1] if l else -1))
mix([len(l) for l in lst[::1111]])
del lst

# 4. A bytearray grown piece by piece (realloc chains through every tier).
b = bytearray()
for i in range(150000):
    b += bytes([i & 255]) * (i % 9)
mix(hashlib.sha256(b).hexdigest())
while len(b) > 1000:
    del b[len(b) // 2:]
mix(bytes(b))
del b

# 5. Four threads building and churning dicts at once.
results = [None] * 4
def work(t):
    dd = {}
    for i in range(40000):
        dd[(t, i)] = [i * (t + 1), str(i) * (i % 5), {"x": i, "s": "t%d" % t}]
    acc = 0
    for k, v in dd.items():
        acc += v[0] + len(v[1]) + v[2]["x"]
    for i in range(0, 40000, 2):
        del dd[(t, i)]
    for i in range(0, 40000, 4):
        dd[(t, -i)] = "again" * (i % 7)
    results[t] = (acc, len(dd), sum(len(x) for x in dd.values() if isinstance(x, str)))
threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print("threads", repr(results))
mix(results)

print("checksum", h.hexdigest())

if len(sys.argv) > 1 and sys.argv[1] == "check":
    # Is hakmem mapped here, and does malloc resolve into it?
    import ctypes
    maps = open("/proc/self/maps").read().splitlines()
    print("mapped", any("libhakmem" in l for l in maps))
    addr = ctypes.cast(ctypes.CDLL(None).malloc, ctypes.c_void_p).value
    owner = "?"
    for l in maps:
        f = l.split()
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        if lo <= addr < hi:
            owner = f[5] if len(f) > 5 else "anon"
    print("malloc_from", owner)
EOF

base env PYTHONMALLOC=malloc "$py" "$tmp/work.py" >"$tmp/base.out" 2>"$tmp/base.err"
brc=$?
pre env PYTHONMALLOC=malloc "$py" "$tmp/work.py" check >"$tmp/pre.out" 2>"$tmp/pre.err"
prc=$?

want=$(grep '^checksum ' "$tmp/base.out")
got=$(grep '^checksum ' "$tmp/pre.out")
complaint=$(preload_complaint "$tmp/pre.err")
if [ $brc -ne 0 ] || [ -z "$want" ]; then
  fail python_workload "reference run without hakmem failed (exit $brc): $(tail -n 1 "$tmp/base.err")"
elif [ $prc -ne 0 ]; then
  fail python_workload "exit status $prc under hakmem: $(tail -n 3 "$tmp/pre.err" | tr '\n' ' ')"
elif [ -n "$complaint" ]; then
  fail python_workload "$complaint"
elif [ "$got" != "$want" ]; then
  fail python_workload "checksum differs: got '$got', want '$want'"
else
  pass python_workload
fi

want=$(grep '^threads ' "$tmp/base.out")
got=$(grep '^threads ' "$tmp/pre.out")
if [ -n "$want" ] && [ "$got" = "$want" ]; then
  pass python_threads_checksum
else
  fail python_threads_checksum "thread results differ: got '$got', want '$want'"
fi

if ! grep -qx 'mapped True' "$tmp/pre.out"; then
  fail python_malloc_is_hakmem "libhakmem not mapped in the python process"
elif ! grep '^malloc_from ' "$tmp/pre.out" | grep -q libhakmem; then
  fail python_malloc_is_hakmem "malloc resolves to $(grep '^malloc_from ' "$tmp/pre.out" | cut -d' ' -f2), not libhakmem"
else
  pass python_malloc_is_hakmem
fi

finish
