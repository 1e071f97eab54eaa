#!/usr/bin/env bash
# Sets up and runs the whole test suite: formatting, lints, unit and
# integration tests (real model, real audio, a private PulseAudio server the
# tests start themselves), and one run of every benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
# Tests that need something of the machine (the tmpfs and read-only writer
# tests need mount, as root) fail under CI=true instead of skipping.
export CI=true
scripts/setup.sh debug
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --all-targets
