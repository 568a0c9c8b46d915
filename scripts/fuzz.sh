#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz) with clang in build-fuzz/ and runs
# each for SECONDS (default 30) with its dictionary (tests/fuzz/*.dict) over a
# copy of its seed corpus, so the repository's corpus never changes. fuzz_data's
# seeds are the valid files of tests/fuzz/corpus/data plus the defective ones of
# the table the unit and MPI tests share (tests/common/bad_h5.c), written by
# make_bad_data. Every
# crash, leak, timeout or OOM is re-run alone and attributed by the first stack
# frame that is neither libc nor the sanitizers: dptrain's code, or a library
# (libhdf5's own parsers crash on some corrupt files; those are HDF5 bugs,
# listed but not failed on).
#
# Usage: scripts/fuzz.sh [SECONDS]
# Env:   FUZZ_BUILD (build dir, default build-fuzz), FUZZ_WORK (working dir,
#        default a temp dir removed at exit), FUZZ_STRICT=1 (fail on library
#        crashes too), FUZZ_RSS_MB (default 2048), FUZZ_TARGETS (default both).
# Exit:  0 no finding in dptrain's code, 1 a finding (artifacts kept), 2 usage.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-30}
[[ $SECONDS_EACH =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS]" >&2; exit 2; }
BUILD=${FUZZ_BUILD:-build-fuzz}
RSS=${FUZZ_RSS_MB:-2048}
TARGETS=${FUZZ_TARGETS:-fuzz_config fuzz_data}
if [[ -n ${FUZZ_WORK:-} ]]; then
    WORK=$FUZZ_WORK
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d /tmp/dptrain-fuzz.XXXXXX)
    trap 'rm -rf "$WORK"' EXIT
fi

CC=${CC:-clang} cmake -S . -B "$BUILD" -DDPTRAIN_FUZZ=ON -DDPTRAIN_NATIVE=OFF -DBUILD_TESTING=OFF \
    > "$WORK/configure.log" || { cat "$WORK/configure.log"; exit 1; }
BUILD_TARGETS=$TARGETS
[[ " $TARGETS " == *" fuzz_data "* ]] && BUILD_TARGETS+=" make_bad_data"
# shellcheck disable=SC2086
cmake --build "$BUILD" -j 2 --target $BUILD_TARGETS > "$WORK/build.log" || { cat "$WORK/build.log"; exit 1; }

# Prints "<owner> <signature>" for one artifact's report: the owner is "dptrain",
# "libhdf5", another library's name, or "unknown".
classify() {
    awk '
        /ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:/ { seen = 1 }
        seen && /^ *#[0-9]+ / && !done {
            line = $0
            if (line ~ /libc\.so|libc_start|sysdeps|__interceptor_|__asan|__sanitizer|__ubsan|__lsan|fuzzer::|compiler-rt|libclang_rt|__GI_|__libc|pthread_kill|gsignal|raise|abort|dp_malloc_check|dp_calloc_check| in (malloc|calloc|realloc|free) /)
                next
            fn = (line ~ / in /) ? line : ""
            sub(/^.* in /, "", fn); sub(/ .*/, "", fn)
            if (line ~ /libhdf5/) owner = "libhdf5"
            else if (line ~ /\/src\/|tests\/fuzz|\/fuzz_(config|data)[+ ]/) owner = "dptrain"
            else if (match(line, /lib[A-Za-z0-9_]+\.so/)) owner = substr(line, RSTART, RLENGTH)
            else owner = "unknown"
            sig = sig (sig == "" ? "" : "<") (fn == "" ? "?" : fn)
            if (!owner_set) { first = owner; owner_set = 1 }
            if (++n == 3) done = 1
        }
        /runtime error:/ && !ub { ub = $0; sub(/: runtime error.*/, "", ub); sub(/^.*\//, "", ub) }
        END {
            if (!owner_set && ub != "") { first = "dptrain"; sig = ub }
            if (!owner_set && ub == "" && seen) { first = "unknown"; sig = "no-stack" }
            if (!seen) { first = "unreproduced"; sig = "-" }
            print first, sig
        }'
}

status=0
for t in $TARGETS; do
    corpus_src=tests/fuzz/corpus/${t#fuzz_}
    dir=$WORK/$t
    mkdir -p "$dir/corpus" "$dir/artifacts" "$dir/logs"
    cp "$corpus_src"/* "$dir/corpus/"
    if [[ $t == fuzz_data ]]; then
        # The shared table's defective files (its writer needs no leak report).
        ASAN_OPTIONS=detect_leaks=0 "$BUILD/tests/common/make_bad_data" "$dir/corpus" \
            > "$dir/make_bad_data.log" 2>&1 || { cat "$dir/make_bad_data.log"; exit 1; }
    fi
    seeds=$(ls "$dir/corpus" | wc -l)
    dict=tests/fuzz/${t#fuzz_}.dict
    # Fork mode keeps going after a crash, so one HDF5 bug does not end the run.
    mkdir -p "$dir/tmp"
    TMPDIR=$dir/tmp "$BUILD/tests/fuzz/$t" -dict="$dict" \
        -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb="$RSS" -malloc_limit_mb=1000000 \
        -timeout=25 -print_final_stats=1 -artifact_prefix="$dir/artifacts/" "$dir/corpus" \
        > "$dir/fuzz.log" 2>&1 || true
    last=$(grep -E '^#[0-9]+: cov: ' "$dir/fuzz.log" | tail -1 || true)
    execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<< "$last")
    cov=$(sed -E 's/.* cov: ([0-9]+).*/\1/' <<< "$last")
    ft=$(sed -E 's/.* ft: ([0-9]+).*/\1/' <<< "$last")
    corp=$(ls "$dir/corpus" | wc -l)
    ours=0 lib=0 flaky=0
    declare -A sigs=()
    for a in "$dir"/artifacts/*; do
        [[ -e $a ]] || continue
        out=$(TMPDIR=$dir/tmp UBSAN_OPTIONS=print_stacktrace=1 ASAN_OPTIONS=fast_unwind_on_malloc=0 \
              "$BUILD/tests/fuzz/$t" -timeout=25 -rss_limit_mb="$RSS" -malloc_limit_mb=1000000 \
              "$a" 2>&1 || true)
        printf '%s\n' "$out" > "$dir/logs/$(basename "$a").log"
        read -r owner sig <<< "$(classify <<< "$out")"
        if [[ $owner == dptrain || $owner == unknown ]]; then
            ours=$((ours + 1))
        elif [[ $owner == unreproduced ]]; then
            # Crashed in the fork run but not alone: state left by earlier inputs.
            flaky=$((flaky + 1))
        else
            lib=$((lib + 1))
        fi
        sigs["$owner $sig"]+="$(basename "$a") "
    done
    printf '%s: %s execs in %ss, cov %s ft %s, corpus %s -> %s, findings: %d in dptrain, %d in libraries, %d not reproducible\n' \
        "$t" "${execs:-0}" "$SECONDS_EACH" "${cov:-?}" "${ft:-?}" "$seeds" "$corp" "$ours" "$lib" "$flaky"
    for k in "${!sigs[@]}"; do
        echo "  $k: ${sigs[$k]}"
    done
    unset sigs
    if ((ours > 0 || (${FUZZ_STRICT:-0} == 1 && lib + flaky > 0))); then
        status=1
        [[ -n ${FUZZ_WORK:-} ]] || { trap - EXIT; echo "  artifacts and logs kept in $dir"; }
    fi
    if [[ -z $last ]]; then
        echo "  $t did not run; its log:" && tail -20 "$dir/fuzz.log"
        status=1
    fi
done
exit $status
