#!/usr/bin/env bash
# Builds and runs the convolution kernels' standalone C programs (no Python needed):
#   tests/c/convk.sh test       test_convk and test_nchwc at -O2 with OpenMP: every ISA path
#                               this CPU runs (test_convk with a 32 and a 48 KB L1's blocking)
#   tests/c/convk.sh sanitize   test_convk under AddressSanitizer + UndefinedBehaviorSanitizer
#   tests/c/convk.sh bench [args]   bench_convk at -O3 (see tests/c/bench_convk.c for args)
#   tests/c/convk.sh ab REV B C H W OC kh kw sh sw ph pw threads [calls]
#                               one layer's forward by git revision REV's convk.c and this
#                               tree's, calls alternating in one process (tests/c/ab_convk.c)
# CC picks the compiler (default: gcc); binaries go to a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
CC=${CC:-gcc}
out=$(mktemp -d /tmp/inception-convk.XXXXXX)
trap 'rm -rf "$out"' EXIT
OMP=-fopenmp
mode=${1:-test}
case "$mode" in
test)
    $CC -std=c99 -O2 -Wall -Wextra $OMP -Icsrc tests/c/test_convk.c csrc/convk.c -lm -o "$out/t"
    INCEPTION_NATIVE_L1D_KB=32 "$out/t"
    INCEPTION_NATIVE_L1D_KB=48 "$out/t"
    $CC -std=c99 -O2 -Wall -Wextra $OMP -Icsrc tests/c/test_nchwc.c csrc/nchwc.c csrc/convk.c -lm \
        -o "$out/n"
    "$out/n" ;;
sanitize)
    SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
    $CC -std=c99 -O1 -g $SAN $OMP -Icsrc tests/c/test_convk.c csrc/convk.c -lm -o "$out/t"
    ASAN_OPTIONS="detect_leaks=1:halt_on_error=1" UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
        "$out/t" ;;
bench)
    shift
    $CC -std=c99 -O3 -Wall $OMP -Icsrc tests/c/bench_convk.c csrc/convk.c csrc/nchwc.c csrc/conv.c \
        csrc/gemm.c csrc/im2col.c -ldl -lm -o "$out/b"
    "$out/b" "$@" ;;
ab)
    rev=${2:?a git revision to compare with}
    shift 2
    mkdir "$out/base"
    git archive "$rev" csrc | tar -x -C "$out/base"
    $CC -std=c99 -O3 $OMP -I"$out/base/csrc" -c "$out/base/csrc/convk.c" -o "$out/base.o"
    nm --defined-only -g "$out/base.o" | awk '{print $3, "base_" $3}' > "$out/names"
    objcopy --redefine-syms="$out/names" "$out/base.o"
    $CC -std=c99 -O3 -Wall $OMP -Icsrc tests/c/ab_convk.c csrc/convk.c "$out/base.o" -lm \
        -o "$out/ab"
    "$out/ab" "$@" ;;
*)
    echo "usage: $0 test|sanitize|bench [bench args]|ab REV [layer]" >&2; exit 2 ;;
esac
