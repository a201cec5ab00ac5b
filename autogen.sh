#!/bin/sh
# Regenerates configure from configure.ac, then runs it with the given args.
set -e
srcdir=$(dirname "$0")
(cd "$srcdir" && autoconf -f)
exec "$srcdir/configure" "$@"
