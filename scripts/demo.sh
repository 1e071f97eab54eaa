#!/usr/bin/env bash
# The main job: set up, then transcribe a bundled clip live, as system audio
# (loopback). With no sound server running, hark starts a private one, plays
# assets/weather.wav into its virtual speaker and transcribes what the
# speaker's monitor captures; on a desktop it plays the clip on the default
# output and captures that output's monitor. The transcript goes to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh release
exec target/release/hark live --demo "$@"
