#!/usr/bin/env bash
# scripts/serve.sh — `make serve`: builds the default models if they are
# missing, then starts `melodic serve` (it prints its address).
#   build/models/speech.h5   the robust speech model: mn04 layer statistics + logistic regression,
#                            level-normalised, trained with noise/babble/reverb/codec/speed copies
#                            (speech_robust_speaker), chosen by speaker-independent accuracy and
#                            corruption accuracy together (README: "Which speech model make serve uses")
#   build/models/music.h5    logreg + SVM + RF ensemble on mn04 layers + the paper's music features (music_layers_artist)
#   build/models/library.h5  the 4Q tracks indexed with music.h5
#   build/models/speech_calibrated.h5  mn04 layer statistics with per-speaker
#                            calibration (speech_calibrated_speaker): answers a user
#                            once 20 of their recordings are kept in the feedback db
# Extra arguments go to melodic serve (e.g. --port 8081 --host 0.0.0.0).
# HOST and PORT in the environment are honoured too (make serve PORT=8081).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${MELODIC_BIN:-build/melodic}
data=${MELODIC_DATA:-../shared/data}
out=build/models
mkdir -p "$out"
jobs=${JOBS:-2}
# SPEECH_EXPERIMENT / SPEECH_MODEL choose another speech model, e.g. the paper's
# mn04 embedding + MLP:
#   make serve SPEECH_EXPERIMENT=experiments/table2_speech_mn04_speaker.yaml SPEECH_MODEL=mlp
# (the choice is remembered in build/models/speech.choice; a new one re-exports)
speech_exp=${SPEECH_EXPERIMENT:-experiments/speech_robust_speaker.yaml}
speech_model=${SPEECH_MODEL:-logreg}
choice="$speech_exp $speech_model"
if [ -f "$out/speech.h5" ] && [ "$(cat "$out/speech.choice" 2>/dev/null)" != "$choice" ]; then
  echo "serve: the speech model changed to $speech_model of $speech_exp: exporting it again"
  rm -f "$out/speech.h5"
fi
if [ ! -f "$out/speech.h5" ]; then
  echo "serve: exporting the speech model ($speech_model of $speech_exp; takes minutes the first time)"
  "$bin" export "$speech_exp" --model "$speech_model" -o "$out/speech.h5" -j "$jobs"
  echo "$choice" > "$out/speech.choice"
fi
if [ ! -f "$out/music.h5" ]; then
  echo "serve: exporting the music model (ensemble on 4Q, music_layers_artist)"
  "$bin" export experiments/music_layers_artist.yaml --model ensemble -o "$out/music.h5" -j "$jobs"
fi
if [ ! -f "$out/speech_calibrated.h5" ]; then
  echo "serve: exporting the calibrated speech model (mn04 layers, per-speaker calibration)"
  "$bin" export experiments/speech_calibrated_speaker.yaml --model logreg -o "$out/speech_calibrated.h5" -j "$jobs"
fi
if [ ! -f "$out/library.h5" ]; then
  echo "serve: indexing the 4Q library"
  "$bin" index "$out/music.h5" "$data/music-4q" -o "$out/library.h5" -j "$jobs"
fi
args=(--speech "$out/speech.h5" --speech-calibrated "$out/speech_calibrated.h5" --library "$out/library.h5"
      --db "$out/feedback.sqlite")
[ -n "${HOST:-}" ] && args+=(--host "$HOST")
[ -n "${PORT:-}" ] && args+=(--port "$PORT")
exec "$bin" serve "${args[@]}" "$@"
