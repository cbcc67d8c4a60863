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
