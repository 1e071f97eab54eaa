#!/usr/bin/env bash
# The main job: set up, then transcribe the bundled clip with the default model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh release
exec target/release/hark transcribe assets/weather.wav
