#!/usr/bin/env bash
# Fetch Breakpad's minidump_stackwalk, minidump_dump and dump_syms into
# .cache/minidump/package/bin/linux-x64/ (the path the Makefile and the processor's
# default PROCESSOR_STACKWALKER expect).
#
# They come prebuilt in the npm package minidump@0.26.0 (Breakpad 8988364b). We use
# `npm pack` + tar, never `npm install`: its preinstall hook runs git submodules and a build.
# Where the package has no binary for this machine, we build Breakpad from the tarball's
# deps/breakpad and put the results at the same path, so callers need no per-platform logic.
# Idempotent: does nothing when the three tools are already there.
set -euo pipefail

VERSION=0.26.0
TOOLS="minidump_stackwalk minidump_dump dump_syms"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=$ROOT/.cache/minidump
PKG=$CACHE/package
BIN=$PKG/bin/linux-x64

have_tools() {
    local t
    for t in $TOOLS; do [ -x "$BIN/$t" ] || return 1; done
}

build_from_source() {
    # Same steps as the package's own build.js, limited to the tools we need.
    local build=$PKG/build
    local targets="src/processor/minidump_stackwalk src/processor/minidump_dump"
    [ "$(uname -s)" = Linux ] && targets="$targets src/tools/linux/dump_syms/dump_syms"
    mkdir -p "$build"
    (cd "$build" && CPPFLAGS="-I$PKG/deps" "$PKG/deps/breakpad/configure" >/dev/null \
        && make -j"$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)" $targets)
    for t in $targets; do cp -f "$build/$t" "$BIN/"; done
}

have_tools && exit 0

command -v npm >/dev/null || { echo "fetch_stackwalker: npm is required" >&2; exit 1; }
mkdir -p "$CACHE"
tmp=$(mktemp -d "$CACHE/tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "minidump@$VERSION" >/dev/null)
tar xzf "$tmp/minidump-$VERSION.tgz" -C "$tmp"
rm -rf "$PKG"
mv "$tmp/package" "$PKG"

case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) ;;
    Darwin-x86_64) for t in $TOOLS; do ln -sf "../darwin-x64/$t" "$BIN/$t"; done ;;
    Darwin-arm64) for t in $TOOLS; do ln -sf "../darwin-arm64/$t" "$BIN/$t"; done ;;
    *) build_from_source ;;
esac

have_tools || { echo "fetch_stackwalker: tools missing in $BIN" >&2; exit 1; }
echo "fetch_stackwalker: minidump@$VERSION tools in $BIN"
