#!/usr/bin/env bash
# Fuzzes hark's parsers with cargo-fuzz (nightly), one target at a time.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 600); targets default to all of them: wav,
# ggml, ct2, tokenizer, recover (see fuzz/src/lib.rs). Each run starts from
# the committed corpus (fuzz/corpus/<target>) and the seeds
# (fuzz/seeds/<target>, made by fuzz/seeds.py), then the corpus is
# minimised back into fuzz/corpus/<target> with `cargo fuzz cmin`. A finding
# stops the script with libFuzzer's report; its input is under
# fuzz/artifacts/<target>/. Copy it to fuzz/regressions/<target>/ with the
# fix, so `cargo test --test fuzz_corpus` replays it forever.
#
# Logs (with libFuzzer's run counts) go to fuzz/target/logs/<target>.log.
# Needs: rustup's nightly toolchain and `cargo install cargo-fuzz`.
set -euo pipefail

cd "$(dirname "$0")/../fuzz"
seconds=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(wav ggml ct2 tokenizer recover)
fi

# Largest input tried, per target: enough for every header and a few
# records or tensors (the ggml target puts the 64 KB mel filterbank back
# itself, see fuzz/src/lib.rs), small enough to keep the corpus small.
max_len_of() {
    case $1 in
        tokenizer) echo 16384 ;;
        recover) echo 4096 ;;
        *) echo 8192 ;;
    esac
}
# A run whose RSS passes this is a finding: every parser must bound what a
# header makes it allocate by the input's own size.
rss_limit_mb=1024

[ -d seeds ] || python3 seeds.py
mkdir -p target/logs
nice -n 10 cargo +nightly fuzz build
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "seeds/$target"
    max_len=$(max_len_of "$target")
    work=$(mktemp -d "target/work-$target.XXXX")
    cp -a "corpus/$target/." "$work/"
    echo "fuzzing $target for ${seconds}s (log: fuzz/target/logs/$target.log)"
    nice -n 10 cargo +nightly fuzz run "$target" "$work" "seeds/$target" -- \
        -max_total_time="$seconds" -max_len="$max_len" -rss_limit_mb="$rss_limit_mb" \
        -timeout=10 -print_final_stats=1 2>&1 | tee "target/logs/$target.log" | grep -E "^Done|stat::|ERROR|panicked" || true
    if grep -qE "ERROR|panicked|Test unit written" "target/logs/$target.log"; then
        echo "$target: finding, see fuzz/target/logs/$target.log and fuzz/artifacts/$target/" >&2
        exit 1
    fi
    rm -rf "corpus/$target"
    mkdir -p "corpus/$target"
    # Minimised by edges alone (not hit counts): the same code coverage from
    # a tenth of the files, so the committed corpus stays small.
    nice -n 10 cargo +nightly fuzz cmin "$target" "$work" -- -max_len="$max_len" \
        -rss_limit_mb="$rss_limit_mb" -use_counters=0 >>"target/logs/$target.log" 2>&1
    cp -a "$work/." "corpus/$target/"
    rm -rf "$work"
    echo "$target: $(ls "corpus/$target" | wc -l) corpus files, $(du -sb "corpus/$target" | cut -f1) bytes"
done
