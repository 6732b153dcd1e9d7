#!/usr/bin/env bash
# Build the four extra corpora (nemo, es-students, esd-0020, emospeech-cmd) on a new machine, outside the repository.
#
# Usage: scripts/build_corpora.sh MIRRORS [OUT]
#   MIRRORS: a folder holding a copy of each corpus's public repository, one sub-folder per repository named
#            owner+name (e.g. MIRRORS/amu-cai+nEMO/repo: its git directory, a bare repository or a work tree's .git);
#            `python ../shared/corpora/build.py list` names each corpus's repository and pinned commit.
#   OUT:     where the corpora go (default ../corpora, beside the repository); OUT/NAME per corpus.
# A corpus already built (OUT/NAME/MANIFEST.tsv and SOURCE.txt present) is skipped, so a rerun only builds what is
# missing. Needs ../shared/corpora/build.py and a python with numpy, soundfile and soxr (PYTHON, default the venv's).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MIRRORS=${1:?usage: scripts/build_corpora.sh MIRRORS [OUT]}
OUT=${2:-$ROOT/../corpora}
BUILD=${BUILD:-$ROOT/../shared/corpora/build.py}
PYTHON=${PYTHON:-$(command -v /work/venv/bin/python || command -v python3)}
[[ -f "$BUILD" ]] || { echo "error: $BUILD: no corpus builder (set BUILD=path/to/build.py)" >&2; exit 1; }

# corpus name -> repository (owner+name), as `build.py list` names them
declare -A REPOS=(
  [nemo]=amu-cai+nEMO
  [es-students]=rcebrian+speech-emotion-recognition
  [esd-0020]=sanjana1194+Voice-Conversion
  [emospeech-cmd]=RakshakTeam+emospeech-dataset-v1
)

status=0
for name in nemo es-students esd-0020 emospeech-cmd; do
  target=$OUT/$name
  if [[ -f "$target/MANIFEST.tsv" && -f "$target/SOURCE.txt" ]]; then
    echo "$name: already built in $target (skipped)"
    continue
  fi
  git_dir=$MIRRORS/${REPOS[$name]}/repo
  [[ -d "$git_dir" ]] || git_dir=$MIRRORS/${REPOS[$name]}
  if ! git --git-dir "$git_dir" rev-parse --git-dir >/dev/null 2>&1; then
    echo "error: $name: no git directory at $MIRRORS/${REPOS[$name]}[/repo]" >&2
    status=1
    continue
  fi
  echo "$name: building from $git_dir into $target"
  rm -rf "$target.part"
  if "$PYTHON" "$BUILD" "$name" --git-dir "$git_dir" --out "$target.part"; then
    rm -rf "$target"
    mv "$target.part" "$target"
  else
    echo "error: $name: build failed (partial output left in $target.part)" >&2
    status=1
  fi
done
exit $status
