#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz corpora (test/fuzz/corpus/NAME/seed-*).

The seeds are committed; this script documents how they were made and
regenerates them (deterministically) after a format change:
    python3 test/fuzz/make-seeds.py [test/fuzz/corpus]
Crashers found by `make fuzz` are added to the same directories by hand,
named crash-<what>, and stay as regression tests.
"""
import os
import random
import struct
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")


def write(corpus, name, data):
    d = os.path.join(OUT, corpus)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# ---- conf: MODE '\n' CONF, or CONF ----
conf = {
    "empty": "",
    "mode-fast": "mode:fast",
    "env-mode": "research\nnarenas:4",
    "env-bad-mode": "turbo\ntcache:0",
    "features": "tcache:0,bigcache:1,decay:off,stats_page:yes,learner:true,debug_checks:0",
    "numbers": "narenas:64,bigcache_max_mb:1048576,decay_ms:-1,thp:1",
    "bounds-over": "narenas:65,bigcache_max_mb:1048577,decay_ms:-2,thp:2,guard_sample:1000001",
    "bounds-zero": "narenas:0,stats_page_interval_ms:0,stats_page_delay_ms:0",
    "long-number": "decay_ms:99999999999999999999999,narenas:-0,narenas:-",
    "print": "stats_print:1,stats_print_opts:Jgtmlh,stats_print_opts:0123456789abcdef",
    "string-max": "stats_print_opts:0123456789abcde",
    "later-wins": "mode:minimal,tcache:1,mode:balanced,tcache:0",
    "junk": ",,,:,a:b:c,:value,key:,=,mode",
    "unknown": "no_such_option:1,MODE:fast,Mode:fast, mode:fast",
    "every-option": "mode:learning,tcache:1,bigcache:1,decay:1,stats_page:0,narenas:2,"
                    "bigcache_max_mb:8,decay_ms:0,thp:0,stats_print:0,stats_print_opts:J,"
                    "stats_page_interval_ms:3600000,stats_page_delay_ms:3600000,"
                    "background_thread:0,learner:0,debug_checks:1,crash_report:0,"
                    "abort_on_error:1,guard_sample:0,fail_mmap_after:1099511627776",
    "fail-after-over": "fail_mmap_after:1099511627777,fail_mmap_after:-1",
    "long-key": "k" * 300 + ":1," + "mode:" + "x" * 300,
    "nul-inside": "mode:fast\0,tcache:0",
    "newlines": "fast\nmode:minimal\ntcache:1",
    "bools": "tcache:on,tcache:off,tcache:yes,tcache:no,tcache:TRUE,tcache:2",
}
for k, v in conf.items():
    write("conf", k, v)

# ---- ctl: FLAGS OLDLEN NEWLEN NAME [\0 VALUE] ----
R, W, MIB, LIST, PRINT, NOLEN = 1, 2, 4, 8, 16, 32
ctl = [
    ("version", R, 3, 0, "version", b""),
    ("mode-read", R, 3, 0, "config.mode", b""),
    ("mode-write", W, 0, 3, "config.mode", b"fast"),
    ("mode-write-bad", W, 0, 3, "config.mode", b"warp"),
    ("mode-rw", W | 0x40, 3, 3, "config.mode", b"balanced"),
    ("class-stats", R, 4, 0, "tiny.class.3.stats", b""),
    ("class-field", R | MIB, 3, 0, "mid.class.2.stats.nmalloc", b"\x02\x05\x01"),
    ("class-oob", R, 3, 0, "tiny.class.999.size", b""),
    ("tcache-max", R | W | 0x40, 2, 2, "tiny.class.1.tcache_max", b"\x10\x00\x00\x00"),
    ("purge", W | 0x80, 0, 0, "arena.0.purge", b""),
    ("purge-bad-index", W | 0x80, 0, 0, "arena.4096.purge", b""),
    ("decay", W, 0, 3, "arena.0.decay_ms", b"\xff\xff\xff\xff\xff\xff\xff\xff"),
    ("flush", W | 0x80, 0, 0, "thread.tcache.flush", b""),
    ("tcache-enabled", W, 0, 1, "thread.tcache.enabled", b"\x01"),
    ("thread-arena", W, 0, 2, "thread.arena", b"\x07\x00\x00\x00"),
    ("bigcache", W, 0, 1, "config.features.bigcache", b"\x00"),
    ("epoch", R | W | 0x40, 3, 3, "epoch", b"\x01"),
    ("list-all", LIST, 0, 0, "", b""),
    ("list-prefix", LIST, 0, 0, "tiny.class.1", b""),
    ("list-dot", LIST, 0, 0, "tiny.", b""),
    ("list-leaf", LIST, 0, 0, "stats.mapped", b""),
    ("print-text", PRINT, 0, 0, "", b""),
    ("print-json", PRINT, 0, 0, "J", b""),
    ("print-omit", PRINT, 0, 0, "gtmlh", b""),
    ("no-oldlen", NOLEN, 3, 0, "stats.allocated", b""),
    ("wrong-len", R, 1, 0, "stats.allocated", b""),
    ("odd-len", R | W, 0xC5, 0xC7, "opt.narenas", b"\x01\x02\x03\x04\x05\x06\x07"),
    ("empty-name", R | W | MIB | LIST, 3, 3, "", b""),
    ("dots", R | MIB, 3, 0, "..", b""),
    ("trailing-dot", R | MIB, 3, 0, "stats.", b""),
    ("long-name", R | MIB | LIST, 3, 0, "a." * 120, b""),
    ("huge-index", R | MIB, 3, 0, "tiny.class.18446744073709551615.size", b""),
    ("neg-index", R, 3, 0, "arena.-1.nthreads", b""),
    ("mib-junk", MIB | 0x10, 3, 0, "arena.0.stats.mapped", bytes(range(0, 64, 3))),
    ("readonly-write", W, 0, 2, "opt.narenas", b"\x01\x00\x00\x00"),
    ("stats-page-path", R, 3, 0, "stats_page.path", b""),
    ("learn", LIST | R, 3, 0, "learn", b""),
    ("all-flags", 0x3F, 3, 3, "config.features.decay", b"\x01"),
]
for name, flags, ol, nl, key, val in ctl:
    write("ctl", name, bytes([flags, ol, nl]) + key.encode() + b"\0" + val)

# ---- ops: 4-byte instructions OP SLOT A B ----
def ins(op, slot, a, b):
    return bytes([op, slot, a, b])

TINY, MID, LARGE, HUGE, EDGE = 0x00, 0x60, 0xA0, 0xC0, 0xE0
ops = {
    "malloc-free": ins(0, 0, TINY, 40) + ins(0, 1, MID, 7) + ins(0, 2, LARGE, 9) +
                   ins(0, 3, HUGE, 200) + ins(12, 0, 0, 0) + ins(10, 0, 0, 0) + ins(10, 3, 0, 0),
    "calloc": ins(1, 0, TINY | 3, 255) + ins(2, 1, MID | 15, 99) + ins(1, 2, HUGE, 1),
    "impossible": b"".join(ins(op, op, EDGE, b) for op in range(8) for b in (16, 17, 18, 19, 20, 21)),
    "realloc-chain": ins(0, 0, TINY, 8) + b"".join(ins(8, 0, t, 77) for t in (TINY, MID, LARGE, HUGE, LARGE, MID, TINY)),
    "realloc-zero": ins(0, 0, TINY, 8) + ins(8, 0, EDGE, 0) + ins(8, 1, EDGE, 0) + ins(9, 2, EDGE, 0),
    "realloc-fail": ins(0, 0, MID, 5) + ins(8, 0, EDGE, 16) + ins(8, 0, EDGE, 20) + ins(12, 0, 0, 0),
    "reallocarray": ins(0, 0, TINY, 8) + ins(9, 0, MID | 7, 200) + ins(9, 0, EDGE | 3, 16),
    "aligned": b"".join(ins(op, i, t, b) for i, (op, t, b) in enumerate(
        [(3, TINY, 6), (3, MID, 12), (3, LARGE, 21), (3, 0x40, 5), (4, TINY, 8), (4, MID, 22),
         (5, HUGE, 13), (5, LARGE, 21), (6, TINY, 1), (7, MID, 3), (7, EDGE, 0)])),
    "posix-memalign-bad": ins(3, 0, 0x40, 4) + ins(3, 1, 0x40, 1) + ins(3, 2, TINY, 1) + ins(3, 3, TINY, 2),
    "remote-free": b"".join(ins(0, i, t, 50) for i, t in enumerate((TINY, MID, LARGE, HUGE))) +
                   b"".join(ins(11, i, 0, 0) for i in range(4)),
    "ctl-mix": ins(0, 0, TINY, 10) + ins(14, 0, 0, 0) + ins(14, 0, 1, 0) + ins(14, 0, 2, 0) +
               ins(0, 1, HUGE, 5) + ins(10, 1, 0, 0) + ins(0, 1, HUGE, 5) + ins(14, 0, 2, 1) +
               ins(14, 0, 5, 0) + ins(12, 0, 0, 0),
    "modes": b"".join(ins(14, 0, 3, m) + ins(0, m, TINY, 20 * m) + ins(0, 8 + m, MID, m) for m in range(5)) +
             ins(12, 0, 0, 0) + b"".join(ins(10, i, 0, 0) for i in range(16)),
    "tcache-off": ins(0, 0, TINY, 10) + ins(14, 0, 4, 0) + ins(0, 1, TINY, 10) + ins(10, 0, 0, 0) +
                  ins(14, 0, 4, 1) + ins(10, 1, 0, 0),
    "move": ins(0, 0, TINY, 10) + ins(15, 0, 0, 5) + ins(12, 0, 0, 0) + ins(10, 5, 0, 0),
    "usable": ins(0, 0, TINY, 10) + ins(13, 0, 0, 0) + ins(13, 1, 0, 0),
}
rng = random.Random(0x5EED)
for i in range(12):
    ops["random-%02d" % i] = bytes(rng.randrange(256) for _ in range(4 * rng.randrange(8, 200)))
for k, v in ops.items():
    write("ops", k, v)

# ---- statspage: page files ----
HDR, ENT, CMD = 480, 24, 256
MAGIC = 0x50534D454D4B4148
BOOL, UNSIGNED, SIZE, U64, I64, STRING, CLASS_STATS, VOID = range(1, 9)


def sp_hash(h, w):
    h ^= w
    h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h ^ (h >> 29)


def page(entries, ncmds=2, **bend):
    """entries: (name, doc, type, flags, payload bytes, rc)"""
    names = b""
    ents = []
    vals = b""
    for name, doc, typ, flags, payload, rc in entries:
        noff = len(names)
        names += name.encode()
        doff = len(names)
        names += doc.encode()
        slot_words = 1 + max(1, (len(payload) + 7) // 8)
        if typ == VOID:
            slot_words = 1
        voff = len(vals)
        status = len(payload) | (rc << 32)
        v = struct.pack("<Q", status) + payload
        v += b"\0" * (slot_words * 8 - len(v))
        vals += v
        ents.append((noff, len(name), typ, flags, doff, len(doc), voff, slot_words * 8))
    entry_off = HDR
    names_off = entry_off + ENT * len(ents)
    vals_off = (names_off + len(names) + 7) & ~7
    cmd_off = vals_off + len(vals)
    total = cmd_off + CMD * ncmds
    body = bytearray(total)
    for i, (noff, nlen, typ, flags, doff, dlen, voff, vsize) in enumerate(ents):
        struct.pack_into("<IHBBIHHII", body, entry_off + i * ENT, names_off + noff, nlen, typ, flags,
                         names_off + doff, dlen, 0, vals_off + voff, vsize)
    body[names_off:names_off + len(names)] = names
    body[vals_off:vals_off + len(vals)] = vals
    checksum = 0xCBF29CE484222325
    for k in range(0, len(vals), 8):
        checksum = sp_hash(checksum, struct.unpack_from("<Q", vals, k)[0])
    h = dict(magic=MAGIC, version=1, compat=1, header_size=HDR, entry_size=ENT, cmd_size=CMD,
             ncmds=ncmds, total_size=total, pid=0, uid=0, entry_off=entry_off, nentries=len(ents),
             names_off=names_off, names_size=len(names), vals_off=vals_off, vals_size=len(vals),
             cmd_off=cmd_off, seq=2, checksum=checksum)
    h.update(bend)
    struct.pack_into("<QIIIIIIQqQQQQ", body, 0, h["magic"], h["version"], h["compat"], h["header_size"],
                     h["entry_size"], h["cmd_size"], h["ncmds"], h["total_size"], h["pid"], h["uid"],
                     0, 1700000000000, 1700000001000)
    body[80:80 + 6] = b"0.1.0\0"
    body[96:96 + 9] = b"fuzzpage\0"
    cmdline = h.get("cmdline", b"./fuzzpage --seed\0")
    body[112:112 + len(cmdline)] = cmdline
    struct.pack_into("<IIIIIIII", body, 368, h["entry_off"], h["nentries"], h["names_off"],
                     h["names_size"], h["vals_off"], h["vals_size"], h["cmd_off"], 0)
    struct.pack_into("<QQQQQQ", body, 432, h["seq"], 1700000002000, 7, 100, 0, h["checksum"])
    return bytes(body)


def u64(x):
    return struct.pack("<Q", x & 0xFFFFFFFFFFFFFFFF)


good = [
    ("version", "the library version", STRING, 0, b"0.1.0", 0),
    ("config.mode", "minimal|fast|balanced", STRING, 3, b"balanced", 0),
    ("config.debug", "built with --enable-debug", BOOL, 0, u64(0), 0),
    ("opt.narenas", "arenas", UNSIGNED, 0, u64(8), 0),
    ("stats.allocated", "bytes in live blocks", SIZE, 0, u64(123456789), 0),
    ("epoch", "write refreshes", U64, 5, u64(42), 0),
    ("arena.0.decay_ms", "purge delay", I64, 3, u64(-1), 0),
    ("tiny.class.3.stats", "class statistics", CLASS_STATS, 0, b"".join(u64(i * 1000) for i in range(9)), 0),
    ("arena.0.purge", "return all free memory now", VOID, 1, b"", 0),
    ("stats.resident", "resident bytes", SIZE, 4, u64(1 << 40), 0),
    ("huge.stats.nmmap", "mappings", U64, 4, u64(3), 0),
    ("thread.arena", "failed read", UNSIGNED, 0, u64(0), 22),
    ("learn.weird", "unknown type", 42, 0, u64(7) + u64(8), 0),
    ("stats_page.path", "a string with control bytes", STRING, 0, b"/dev/shm/\x01\x7f\"\\x", 0),
]
write("statspage", "good", page(good))
write("statspage", "no-entries", page([]))
write("statspage", "no-cmds", page(good, ncmds=0))
write("statspage", "bad-magic", page(good, magic=MAGIC ^ 1))
write("statspage", "newer-compat", page(good, version=9, compat=2))
write("statspage", "header-too-big", page(good, header_size=1 << 30))
write("statspage", "total-mismatch", page(good, total_size=12345))
write("statspage", "entries-outside", page(good, nentries=100000))
write("statspage", "names-outside", page(good, names_size=1 << 31))
write("statspage", "vals-misaligned", page(good, vals_off=HDR + 3))
write("statspage", "cmds-outside", page(good, ncmds=1000))
write("statspage", "seq-odd", page(good, seq=3))
write("statspage", "bad-checksum", page(good, checksum=1))
write("statspage", "cmdline-unterminated", page(good, cmdline=b"x" * 256))
p = bytearray(page(good))
struct.pack_into("<I", p, HDR + 4 * ENT, 7)  # entry 4: a name offset inside the header
write("statspage", "name-in-header", bytes(p))
p = bytearray(page(good))
vals_off = struct.unpack_from("<I", p, 384)[0]
struct.pack_into("<Q", p, vals_off, 0xFFFFFFFF)  # payload length beyond the slot
write("statspage", "slot-corrupt", bytes(p))
p = bytearray(page(good))
names_off = struct.unpack_from("<I", p, 376)[0]
p[names_off + 2] = ord("!")  # a character no name has
write("statspage", "bad-name-char", bytes(p))
write("statspage", "truncated", page(good)[:700])
write("statspage", "header-only", page(good)[:HDR])
write("statspage", "tiny", b"HAKMEMSP")
print("seeds written under", OUT)
