#!/usr/bin/env bash
# Sets up and runs the whole test suite: formatting, lints, unit and
# integration tests (real model, real audio, a private PulseAudio server the
# tests start themselves), and one run of every benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh debug
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --all-targets
