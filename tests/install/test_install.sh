#!/usr/bin/env bash
# Installs the build into a temporary prefix and uses it from outside: the
# consumer program (consumer.c, which includes only <dptrain.h>) is built with
# `pkg-config --cflags --libs dptrain` by cc and by mpicc, and by a separate
# CMake project through find_package(dptrain); each build trains the seed
# example on 2 ranks and checks the newest checkpoint (see consumer.c). Also
# checks that exactly the public headers are installed and that every global
# symbol libdptrain.a defines starts with dp_.
#
# Env: BUILD_DIR (the dptrain build, required), DPTRAIN_SOURCE_DIR,
#      DPTRAIN_LINK_FLAGS (extra flags a sanitizer build's consumers need).
# common.sh: $SRC, $TMP (removed on exit), check/finish and the MPI settings
# tests use (root allowed, oversubscription, one BLAS thread).
source "$(dirname "$0")/../mpi/common.sh"
BUILD=${BUILD_DIR:?BUILD_DIR must name the dptrain build directory}
EXTRA=${DPTRAIN_LINK_FLAGS:-}
PREFIX=$TMP/prefix

# run NAME BINARY: trains and checks with one consumer build on 2 ranks.
run() {
    local name=$1 bin=$2
    timeout -k 5 180 mpirun --oversubscribe -np 2 "$bin" "$SRC" "$TMP/run-$name" \
        > "$TMP/$name.log" 2>&1
    local rc=$?
    grep '^consumer:' "$TMP/$name.log"
    ((rc == 0)) || tail -20 "$TMP/$name.log"
    return $rc
}

install_prefix() { cmake --install "$BUILD" --prefix "$PREFIX" > "$TMP/install.log" 2>&1 || { cat "$TMP/install.log"; return 1; }; }
check "cmake --install into a temporary prefix" install_prefix

# Exactly include/dptrain.h and include/dptrain/*.h, nothing private.
public_headers() {
    diff <(cd "$SRC/include" && find . -type f | sort) <(cd "$PREFIX/include" && find . -type f | sort)
}
check "the installed headers are the public ones" public_headers

LIB=$(find "$PREFIX" -name libdptrain.a | head -1)
# Global symbols defined by the library. AddressSanitizer adds an ODR indicator
# __odr_asan.NAME for each global NAME: NAME is what is checked.
symbols_prefixed() {
    local bad
    bad=$(nm -g --defined-only "$LIB" | awk 'NF == 3 {sub(/^__odr_asan\./, "", $3); if ($3 !~ /^dp_/) print $3}' | sort -u)
    [[ -z $bad ]] || { echo "symbols without the dp_ prefix:"; echo "$bad"; return 1; }
    echo "libdptrain.a: $(nm -g --defined-only "$LIB" | awk 'NF == 3' | wc -l) global symbols, all dp_*"
}
check "every global symbol of libdptrain.a starts with dp_" symbols_prefixed

export PKG_CONFIG_PATH=$(dirname "$LIB")/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
pc_build() {
    local compiler=$1 out=$2
    # shellcheck disable=SC2046
    "$compiler" -std=c11 -Wall -Wextra -Werror -o "$out" "$SRC/tests/install/consumer.c" \
        $(pkg-config --cflags --libs dptrain) $EXTRA
}
check "pkg-config: cc builds the consumer" pc_build cc "$TMP/consumer-cc"
check "pkg-config: cc consumer trains and reads its checkpoint" run cc "$TMP/consumer-cc"
check "pkg-config: mpicc builds the consumer" pc_build mpicc "$TMP/consumer-mpicc"
check "pkg-config: mpicc consumer trains and reads its checkpoint" run mpicc "$TMP/consumer-mpicc"

cmake_build() {
    cmake -S "$SRC/tests/install" -B "$TMP/cmake" -DCMAKE_PREFIX_PATH="$PREFIX" \
        -DCMAKE_EXE_LINKER_FLAGS="$EXTRA" > "$TMP/cmake.log" 2>&1 &&
        cmake --build "$TMP/cmake" >> "$TMP/cmake.log" 2>&1 || { cat "$TMP/cmake.log"; return 1; }
}
check "find_package(dptrain): a CMake project builds the consumer" cmake_build
check "find_package(dptrain): its consumer trains and reads its checkpoint" run cmake "$TMP/cmake/consumer"

finish
