#!/usr/bin/env bash
# A short scripted tour of ant against the dev cluster (`make demo`).
# Runs as alice in the `research` namespace; cleans up after itself.
set -euo pipefail
export KUBECONFIG=${KUBECONFIG:-$HOME/.cache/ant/devcluster/state/kubeconfig}
export ANT_CONTEXT=alice
job=demo-$RANDOM

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

ant --context admin admin install-priorities >/dev/null
step ant whoami
step ant submit --name "$job" --image ghcr.io/lab/train:1.4 --replicas 4 --tpus 4 \
  --label team=nlp --meta dataset=c4-en --description "BERT-large, seq 512" \
  -- python train.py --lr 3e-4
sleep 2
step ant list
step ant list -o wide
step ant show "$job"
step ant logs "$job" --tail 3
step ant logs "$job" --all --tail 1
step ant restart "$job" --replica 2 --wait
step ant list -o json
step ant delete "$job" --yes --wait

# Jobs that end (docs/controller.md): the dev cluster's kwok makes these containers exit 0
# after 3 s (a test-only pod annotation); the controller records it and scales to 0.
spec=$(mktemp)
trap 'rm -f "$spec"' EXIT
printf 'podTemplate: {metadata: {annotations: {ant.dev/test-exit: "0@3"}}}\n' >"$spec"
step ant submit "$spec" --name "$job-eval" --image ghcr.io/lab/eval:1.0 --replicas 2 \
  --ttl 10m -- python eval.py
step ant wait "$job-eval" --for succeeded --timeout 2m
step ant list --status succeeded
step ant show "$job-eval"
step ant delete "$job-eval" --yes
