#!/usr/bin/env bash
# Builds tests/c/test_kernels.c with the csrc/ kernels under AddressSanitizer (LeakSanitizer
# included) and UndefinedBehaviorSanitizer, then runs it on 1 and 2 OpenMP threads; twice: with
# the kernels multi-versioned as in the package (this machine's best ISA) and with
# -DIN_NO_MULTIVERSION (the baseline x86-64 code); then tests/c/test_convk.c (our convolution
# kernels, every ISA path the CPU runs) and tests/c/test_nchwc.c (the NCHWc direct convolution). Any sanitizer report fails the run.
#   tests/c/run_sanitizers.sh            exit 0: clean; 1: a failure; 77: sanitizers unavailable
# CC picks the compiler (default: cc).
set -euo pipefail
cd "$(dirname "$0")/../.."
CC=${CC:-cc}
out=$(mktemp -d /tmp/inception-sanitizers.XXXXXX)
trap 'rm -rf "$out"' EXIT

SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
echo 'int main(void) { return 0; }' > "$out/probe.c"
if ! $CC $SAN "$out/probe.c" -o "$out/probe" 2>/dev/null || ! "$out/probe"; then
    echo "SKIP: $CC cannot build and run a program with -fsanitize=address,undefined"
    exit 77
fi
OMP=""
if $CC -fopenmp "$out/probe.c" -o "$out/probe" 2>/dev/null; then OMP="-fopenmp"; fi

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
SOURCES="tests/c/test_kernels.c csrc/activation.c csrc/blas.c csrc/batchnorm.c csrc/pool.c csrc/gemm.c csrc/conv.c csrc/im2col.c"
for variant in multiversion baseline; do
    defs=""
    if [ "$variant" = baseline ]; then defs="-DIN_NO_MULTIVERSION"; fi
    # shellcheck disable=SC2086
    $CC -std=c99 -O1 -g $SAN $OMP $defs -Icsrc -Itests/c $SOURCES -lm -o "$out/test_kernels"
    for threads in 1 2; do
        echo "test_kernels ($variant, ${OMP:-no OpenMP}, OMP_NUM_THREADS=$threads):"
        OMP_NUM_THREADS=$threads "$out/test_kernels" 2> "$out/log" || { cat "$out/log"; exit 1; }
        if [ -s "$out/log" ]; then cat "$out/log"; echo "FAIL: output on stderr"; exit 1; fi
    done
done
# our convolution kernels: every ISA path this CPU runs, 1 and 2 threads inside the test; the
# blocking of a 32 KB and of a 48 KB L1 (16 and 32 KB col panels)
$CC -std=c99 -O1 -g $SAN $OMP -Icsrc tests/c/test_convk.c csrc/convk.c -lm -o "$out/test_convk"
for l1d in 32 48; do
    echo "test_convk (${OMP:-no OpenMP}, INCEPTION_NATIVE_L1D_KB=$l1d):"
    INCEPTION_NATIVE_L1D_KB=$l1d "$out/test_convk" 2> "$out/log" || { cat "$out/log"; exit 1; }
    if [ -s "$out/log" ]; then cat "$out/log"; echo "FAIL: output on stderr"; exit 1; fi
done
# the NCHWc direct convolution: every ISA path this CPU runs, 1 and 2 threads inside the test
$CC -std=c99 -O1 -g $SAN $OMP -Icsrc tests/c/test_nchwc.c csrc/nchwc.c csrc/convk.c -lm -o "$out/test_nchwc"
echo "test_nchwc (${OMP:-no OpenMP}):"
"$out/test_nchwc" 2> "$out/log" || { cat "$out/log"; exit 1; }
if [ -s "$out/log" ]; then cat "$out/log"; echo "FAIL: output on stderr"; exit 1; fi
echo "sanitizers: clean"
