#!/usr/bin/env bash
# CUDA checks and timings of the planner (issue 4), for a GPU machine that has PyTorch but
# not this project's venv (the `device` tool's machines):
#
#   bench/planning_cuda.sh OUT_DIR
#
# Runs the CUDA tests of planning/ (CPU/CUDA agreement of rollouts and MDP solves, the
# CUDA-graph replay against the step loop), the compute benchmark on cuda (asv and
# pytorch-mppi at 1024 x 50, 4096 x 50 and 100000 x 100; warmup_s of a fresh process
# includes CUDA start-up and compilation) and the MDP solve times on cuda. Needs
# pytorch-mppi importable. (`asv bench planning --device cuda` runs the closed-loop
# scenarios on CUDA where the project's venv is installed.)
set -uo pipefail
out=${1:?usage: bench/planning_cuda.sh OUT_DIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name())'
python3 -m pytest -q -p no:cacheprovider -k 'cuda or graph' test/planning/test_cuda_graph.py \
    test/planning/test_mppi.py test/planning/mdp/test_solvers.py 2>&1 | tail -15
python3 bench/planning_compute.py --device cuda --repeats 20 --json "$out/compute_cuda.json"
python3 bench/mdp_solve.py --device cuda --json "$out/mdp_cuda.json"
