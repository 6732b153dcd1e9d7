#!/usr/bin/env bash
# Extract recorded non-speech (music, animal sounds, room and handling noises) from three public repositories, for
# the speech detector's false-accept measurement (`python benchmarks/bench_vad.py --real OUT`; docs/vad.md (a2)).
#
# Usage: scripts/build_nonspeech.sh MIRRORS [OUT]
#   MIRRORS: a folder with a copy of each repository, one sub-folder per repository named owner+name (e.g.
#            MIRRORS/librosa+data/repo: its git directory), as the search tool's `fetch github:OWNER/NAME` makes them:
#            librosa/data, iver56/audiomentations, LCAV/pyroomacoustics.
#   OUT:     where the files go (default ../nonspeech, beside the repository), with SOURCE.txt (origin and licence).
# The audio stays outside the repository (several files are CC BY-NC: measurement only, never redistributed).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [[ $# -lt 1 ]]; then
  echo "usage: scripts/build_nonspeech.sh MIRRORS [OUT]" >&2
  exit 2
fi
MIRRORS=$1
OUT=${2:-$ROOT/../nonspeech}

# repository (owner+name) @ pinned commit : path in it : licence (from the repository's own notes)
FILES=(
  "librosa+data@450cdd8a002c98e7bdbfebb309fc1ed024001f77:audio/147793__setuniman__sweet-waltz-0i-22mi.hq.ogg:CC BY-NC 3.0 (music, piano)"
  "librosa+data@450cdd8a002c98e7bdbfebb309fc1ed024001f77:audio/442789__lena-orsa__happy-music-pistachio-ice-cream-ragtime.hq.ogg:CC BY-NC 3.0 (music, ragtime)"
  "librosa+data@450cdd8a002c98e7bdbfebb309fc1ed024001f77:audio/456440__inspectorj__bird-whistling-robin-single-13.hq.ogg:CC BY 3.0 (bird song)"
  "librosa+data@450cdd8a002c98e7bdbfebb309fc1ed024001f77:audio/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).hq.ogg:public domain (music, string orchestra)"
  "librosa+data@450cdd8a002c98e7bdbfebb309fc1ed024001f77:audio/Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.hq.ogg:CC BY (music, celesta and orchestra)"
  "librosa+data@450cdd8a002c98e7bdbfebb309fc1ed024001f77:audio/Kevin_MacLeod_-_Vibe_Ace.hq.ogg:CC BY (music, electronic)"
  "librosa+data@450cdd8a002c98e7bdbfebb309fc1ed024001f77:audio/admiralbob77_-_Choice_-_Drum-bass.hq.ogg:CC BY-NC 3.0 (music, drum and bass)"
  "librosa+data@450cdd8a002c98e7bdbfebb309fc1ed024001f77:audio/glacier-bay-humpback.hq.ogg:public domain, US NPS (humpback whale)"
  "librosa+data@450cdd8a002c98e7bdbfebb309fc1ed024001f77:audio/pibble.hq.ogg:CC BY-NC 3.0 (a dog howling in her sleep)"
  "librosa+data@450cdd8a002c98e7bdbfebb309fc1ed024001f77:audio/sorohanro_-_solo-trumpet-06.hq.ogg:CC BY 3.0 (solo trumpet)"
  "iver56+audiomentations@73b94488279feda6542a2813c70ed0d00b49ee4f:demo/acoustic_guitar_0.wav:see the repository (acoustic guitar)"
  "iver56+audiomentations@73b94488279feda6542a2813c70ed0d00b49ee4f:demo/background_noises/hens.ogg:see the repository (hens)"
  "iver56+audiomentations@73b94488279feda6542a2813c70ed0d00b49ee4f:demo/background_noises/sheep.ogg:see the repository (sheep)"
  "iver56+audiomentations@73b94488279feda6542a2813c70ed0d00b49ee4f:demo/perfect-alley1.ogg:see the repository (street ambience)"
  "iver56+audiomentations@73b94488279feda6542a2813c70ed0d00b49ee4f:demo/short_noises/130921_iPhone_rub_channel0_chunk83_aug2.wav:see the repository (a phone rubbed)"
  "iver56+audiomentations@73b94488279feda6542a2813c70ed0d00b49ee4f:demo/short_noises/130921_laptopmic-dell_tap_channel0_chunk200_aug0.wav:see the repository (taps on a laptop)"
  "iver56+audiomentations@73b94488279feda6542a2813c70ed0d00b49ee4f:demo/short_noises/friction0.wav:see the repository (friction)"
  "iver56+audiomentations@73b94488279feda6542a2813c70ed0d00b49ee4f:demo/tap.wav:see the repository (a tap)"
  "LCAV+pyroomacoustics@6fe43fecb7c358ac9aaa054e7e73641189f1afff:examples/input_samples/doing_the_dishes.wav:see the repository (washing dishes)"
  "LCAV+pyroomacoustics@6fe43fecb7c358ac9aaa054e7e73641189f1afff:examples/samples/guitar_16k.wav:see the repository (electric guitar)"
  "LCAV+pyroomacoustics@6fe43fecb7c358ac9aaa054e7e73641189f1afff:notebooks/exercise_bike.wav:see the repository (an exercise bike)"
)

missing=0
for repo in librosa+data iver56+audiomentations LCAV+pyroomacoustics; do  # every repository first, one line each
  git_dir=$MIRRORS/$repo/repo
  [[ -d "$git_dir" ]] || git_dir=$MIRRORS/$repo
  if ! git --git-dir "$git_dir" rev-parse --git-dir >/dev/null 2>&1; then
    echo "error: no git directory at $MIRRORS/$repo[/repo] (fetch github:${repo/+//})" >&2
    missing=1
  fi
done
[[ $missing == 0 ]] || exit 1
mkdir -p "$OUT"
{
  echo "Recorded non-speech for the speech detector's false-accept measurement (benchmarks/bench_vad.py --real)."
  echo "Built by scripts/build_nonspeech.sh; each line: file <- repository@commit:path, licence (what it is)."
} > "$OUT/SOURCE.txt"
status=0
for entry in "${FILES[@]}"; do
  repo=${entry%%@*}
  rest=${entry#*@}
  commit=${rest%%:*}
  rest=${rest#*:}
  path=${rest%%:*}
  licence=${rest#*:}
  git_dir=$MIRRORS/$repo/repo
  [[ -d "$git_dir" ]] || git_dir=$MIRRORS/$repo
  name="${repo%%+*}_$(basename "$path")"
  if git --git-dir "$git_dir" show "$commit:$path" > "$OUT/$name" 2>/dev/null && [[ -s "$OUT/$name" ]]; then
    echo "$name <- ${repo/+//}@$commit:$path, $licence" >> "$OUT/SOURCE.txt"
  else
    rm -f "$OUT/$name"
    echo "error: ${repo/+//}@$commit:$path: not found under $MIRRORS/$repo (fetch github:${repo/+//})" >&2
    status=1
  fi
done
echo "$(ls "$OUT" | grep -vc SOURCE.txt) files in $OUT"
exit $status
