#!/usr/bin/env bash
# Builds the libFuzzer targets fuzz/fuzz_*.c into build/fuzz/.
#
#   fuzz/build.sh                   every target
#   fuzz/build.sh vhd iso           only fuzz_vhd and fuzz_iso
#   FUZZ_OUT=/tmp/f fuzz/build.sh   another output directory
#   CC=clang-15 fuzz/build.sh       another clang
#
# The engine is compiled once with coverage instrumentation and the
# sanitizers (libFuzzer's own main is not linked into it), then each target
# is linked against all of it: a target uses only the parsers it calls, and
# the linker drops nothing it needs, so a target never breaks because a
# parser it depends on moved into a file of its own.  A failure to compile
# any source stops the build with clang's message; an unreadable or missing
# target name is an error.  Prints the path of each binary it made.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${FUZZ_OUT:-$ROOT/build/fuzz}
CC=${CC:-clang}

SANITIZERS=address,undefined
CFLAGS=(-std=c11 -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=all
        "-I$ROOT/src/vdengine" "-I$ROOT/src/include")

if ! command -v "$CC" >/dev/null 2>&1; then
    echo "fuzz/build.sh: $CC not found (libFuzzer needs clang)" >&2
    exit 2
fi

targets=()
if (($#)); then
    for name in "$@"; do
        name=${name#fuzz_}
        name=${name%.c}
        source=$ROOT/fuzz/fuzz_$name.c
        if [[ ! -r $source ]]; then
            echo "fuzz/build.sh: no target $source" >&2
            exit 2
        fi
        targets+=("$source")
    done
else
    shopt -s nullglob
    targets=("$ROOT"/fuzz/fuzz_*.c)
    shopt -u nullglob
    if ((${#targets[@]} == 0)); then
        echo "fuzz/build.sh: no fuzz/fuzz_*.c targets" >&2
        exit 2
    fi
fi

objects=$OUT/engine
mkdir -p "$objects"
rm -f "$objects"/*.o

engine=()
while IFS= read -r source; do
    # Named by the path under src/vdengine, so that two files of one name
    # in different folders (api/x.c, disk/x.c) make two objects.
    relative=${source#"$ROOT/src/vdengine/"}
    object=$objects/${relative//\//_}
    object=${object%.c}.o
    "$CC" "${CFLAGS[@]}" "-fsanitize=fuzzer-no-link,$SANITIZERS" -c "$source" -o "$object"
    engine+=("$object")
done < <(find "$ROOT/src/vdengine" -name '*.c' | sort)

for source in "${targets[@]}"; do
    binary=$OUT/$(basename "${source%.c}")
    "$CC" "${CFLAGS[@]}" "-fsanitize=fuzzer,$SANITIZERS" "$source" "${engine[@]}" \
        -lpthread -o "$binary"
    echo "$binary"
done
