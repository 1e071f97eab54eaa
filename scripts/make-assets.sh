#!/usr/bin/env bash
# Regenerates the bundled speech clips in assets/ from the reference texts in
# assets/*.txt with espeak-ng (GPL-3 synthesiser; the audio it produces from
# our own text is ours to redistribute) and sox. Not part of set-up: the clips
# are committed. Run it only to change a clip, then commit the result.
set -euo pipefail
cd "$(dirname "$0")/../assets"
command -v espeak-ng >/dev/null && command -v sox >/dev/null || {
  echo "make-assets: needs espeak-ng and sox (apt-get install espeak-ng sox)" >&2; exit 1; }

# speak NAME VOICE SPEED: assets/NAME.txt -> assets/NAME.wav, 16 kHz mono s16.
speak() {
  local name=$1 voice=$2 speed=$3 tmp
  tmp=$(mktemp --suffix=.wav)
  espeak-ng -v "$voice" -s "$speed" -w "$tmp" -f "$name.txt"
  sox "$tmp" -r 16000 -c 1 -b 16 "$name.wav" gain -n -3
  rm -f "$tmp"
}

speak weather en-us 150
speak meeting en-gb 145
speak numbers en-us+f3 150

# The programme: phrases with known boundaries, separated by silences of
# different lengths, for streaming latency benchmarks and the soak harness.
# programme.tsv gets one line per phrase: start_s, end_s, text.
rm -f programme.tsv
parts=()
pos=0
i=0
gaps=(1.5 2.0 1.2 3.0 1.5 2.5 1.0 2.0 1.8 2.2)
while IFS= read -r line; do
  [ -n "$line" ] || continue
  tmp=$(mktemp --suffix=.wav)
  voices=(en-us en-gb en-us+f3 en-gb-x-rp)
  espeak-ng -v "${voices[$((i % 4))]}" -s 150 -w "$tmp" "$line"
  sox "$tmp" -r 16000 -c 1 -b 16 "phrase_$i.wav" gain -n -3
  rm -f "$tmp"
  len=$(soxi -D "phrase_$i.wav")
  gap=${gaps[$((i % ${#gaps[@]}))]}
  sox -n -r 16000 -c 1 -b 16 "gap_$i.wav" trim 0 "$gap"
  printf '%.3f\t%.3f\t%s\n' "$pos" "$(echo "$pos + $len" | bc -l)" "$line" >> programme.tsv
  pos=$(echo "$pos + $len + $gap" | bc -l)
  parts+=("phrase_$i.wav" "gap_$i.wav")
  i=$((i + 1))
done < programme.txt
sox -n -r 16000 -c 1 -b 16 lead.wav trim 0 1.0
# Shift every phrase by the one second of lead-in silence.
awk -F'\t' 'BEGIN{OFS="\t"} {printf "%.3f\t%.3f\t%s\n", $1+1.0, $2+1.0, $3}' programme.tsv > programme.tsv.new
mv programme.tsv.new programme.tsv
sox lead.wav "${parts[@]}" programme.wav
rm -f lead.wav phrase_*.wav gap_*.wav
echo "made: $(ls *.wav | tr '\n' ' ')"
