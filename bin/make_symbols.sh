#!/usr/bin/env bash
# Make Breakpad symbols for a binary and file them where the processor looks:
#   bin/make_symbols.sh BINARY SYMBOLS_DIR
# writes SYMBOLS_DIR/<debug_file>/<debug_id>/<debug_file without .pdb>.sym (Breakpad layout).
# Build BINARY with -g (and keep it unstripped, or pass the separate debug file).
set -euo pipefail
if [ $# -ne 2 ]; then echo "usage: $0 BINARY SYMBOLS_DIR" >&2; exit 2; fi
here="$(cd "$(dirname "$0")/.." && pwd)"
dump_syms="${DUMP_SYMS:-$here/.cache/minidump/package/bin/linux-x64/dump_syms}"
if [ ! -x "$dump_syms" ]; then "$here/bin/fetch_stackwalker.sh" >/dev/null; fi
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
"$dump_syms" "$1" > "$tmp" 2>/dev/null
# MODULE <os> <arch> <debug_id> <debug_file>
read -r tag _os _arch debug_id debug_file < "$tmp"
if [ "$tag" != MODULE ] || [ -z "${debug_file:-}" ]; then
    echo "$0: dump_syms gave no MODULE line for $1" >&2; exit 1
fi
name="${debug_file%.pdb}"
dest="$2/$debug_file/$debug_id"
mkdir -p "$dest"
mv "$tmp" "$dest/$name.sym"
trap - EXIT
echo "$dest/$name.sym"
