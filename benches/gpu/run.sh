#!/usr/bin/env bash
# gputrain against PyTorch on one GPU, and gputrain's tests on that GPU, in one run that ends with
# one printed table. Everything else (JSON, logs, the table again) goes into OUTDIR.
#
#   bash benches/gpu/run.sh [--local] [--tiny] OUTDIR        (from the repository root)
#
# Steps: `gputrain info`; the test executables in $GPUTRAIN_TESTS_DIR run against the adapter;
# `gputrain bench` for the VAE and the DCGAN; `gputrain bench --matmul`; pytorch_models.py `time`
# (eager and CUDA graph) and `matmul` (TF32 off and on); benches/gpu/table.py. Each step runs under
# `timeout` with its own limit, cut to what is left of the run's budget, so one hang cannot eat the
# run; a failed step leaves '-' cells and a note under the table, and the run goes on (exit status 1
# at the end if any step failed or timed out; skipped steps do not count).
#
# --local   this machine's software adapter and PyTorch CPU (when torch imports), smaller settings,
#           no tests unless GPUTRAIN_TESTS_DIR is set (`cargo test --release` covers them here).
# --tiny    the smallest settings that still exercise every step (CI: well under 2 minutes).
#
# Settings (environment):
#   GPUTRAIN_BIN        gputrain binary (default: the one in .gpu/bundle.tar.xz from prepare.sh, else
#                       target/release/gputrain; --local always target/release/gputrain)
#   GPUTRAIN_TESTS_DIR  test executables (default: those in the bundle; --local: none)
#   BENCH_BATCHES       batch sizes (default 32,128,512; --local 32,128; --tiny 4)
#   BENCH_STEPS         timed steps, gputrain and PyTorch (default 50; --local 10; --tiny 2)
#   BENCH_MATMUL        `bench --matmul` shapes (default 1024,2048,4096,models;
#                       --local 256,512,models-small; --tiny 64,128x32x2048)
#   BENCH_BUDGET_S      deadline of the whole run in seconds (default 330; --local 900; --tiny 100)
#   PYTHON              the Python that has torch (default python3)
set -uo pipefail

local_mode=0 tiny=0 outdir=""
for arg in "$@"; do
    case "$arg" in
        --local) local_mode=1 ;;
        --tiny) tiny=1 ;;
        -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { print }' "$0"; exit 0 ;;
        -*) echo "run.sh: unknown option $arg (expected --local, --tiny)" >&2; exit 2 ;;
        *) [ -z "$outdir" ] || { echo "run.sh: one OUTDIR only" >&2; exit 2; }; outdir=$arg ;;
    esac
done
[ -n "$outdir" ] || { echo "usage: bash benches/gpu/run.sh [--local] [--tiny] OUTDIR" >&2; exit 2; }
# OUTDIR is the caller's path: resolved before moving to the repository root.
mkdir -p "$outdir/logs" "$outdir/tests" || exit 2
outdir=$(cd "$outdir" && pwd)
cd "$(dirname "$0")/../.." || exit 2
# A reused OUTDIR must not lend an earlier run's results to this table.
rm -f "$outdir"/*.json "$outdir"/*.txt "$outdir"/tests/*.log "$outdir"/logs/*.log
: >"$outdir/steps.tsv"
: >"$outdir/tests.tsv"

if [ $tiny = 1 ]; then
    batches=4 steps=2 warmup=1 matmul=64,128x32x2048 budget=100
elif [ $local_mode = 1 ]; then
    batches=32,128 steps=10 warmup=3 matmul=256,512,models-small budget=900
else
    batches=32,128,512 steps=50 warmup=10 matmul=1024,2048,4096,models budget=330
fi
batches=${BENCH_BATCHES:-$batches} steps=${BENCH_STEPS:-$steps} matmul=${BENCH_MATMUL:-$matmul}
budget=${BENCH_BUDGET_S:-$budget} python=${PYTHON:-python3}
deadline=$(($(date +%s) + budget))
# The software adapter's limits are minutes where a GPU's are seconds.
slow=1; [ $local_mode = 1 ] && slow=5

# prepare.sh's bundle (the binary, the tests, the path the tests expect the binary at), unpacked
# afresh outside the tree, so that a stale copy can neither run nor travel with .gpu/.
bundle=""
if [ -f .gpu/bundle.tar.xz ] && [ $local_mode = 0 ]; then
    bundle=${TMPDIR:-/tmp}/gputrain-bundle-$(id -u)
    rm -rf "$bundle" && mkdir -p "$bundle" || exit 2
    tar -xJf .gpu/bundle.tar.xz -C "$bundle" 2>/dev/null ||
        python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
            .gpu/bundle.tar.xz "$bundle" || { echo "run.sh: cannot unpack .gpu/bundle.tar.xz" >&2; exit 2; }
fi
bin=${GPUTRAIN_BIN:-}
if [ -z "$bin" ]; then
    if [ -n "$bundle" ]; then bin=$bundle/gputrain; else bin=target/release/gputrain; fi
fi
[ -x "$bin" ] || { echo "run.sh: no gputrain binary at $bin (cargo build --release, or benches/gpu/prepare.sh)" >&2; exit 2; }
tests_dir=${GPUTRAIN_TESTS_DIR:-}
if [ -z "$tests_dir" ] && [ -n "$bundle" ]; then tests_dir=$bundle/tests; fi
export MESA_SHADER_CACHE_DIR=${MESA_SHADER_CACHE_DIR:-$HOME/.cache/mesa}

note() { echo "[run.sh $(date +%H:%M:%S)] $*" | tee -a "$outdir/logs/run.log" >&2; }

# step NAME LIMIT_S STDOUT_FILE CMD...: runs CMD under timeout (limit cut to the budget left), stdout
# to STDOUT_FILE, stderr to logs/NAME.log, and records NAME, its status and seconds in steps.tsv.
step() {
    local name=$1 limit=$2 out=$3 left t0 rc status
    shift 3
    left=$((deadline - $(date +%s)))
    if [ $left -lt 5 ]; then
        printf '%s\tskipped\t0\tthe run budget (%s s) was spent\n' "$name" "$budget" >>"$outdir/steps.tsv"
        note "$name: skipped, budget spent"
        return 124
    fi
    [ "$limit" -gt $left ] && limit=$left
    note "$name (limit ${limit} s): $*"
    t0=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" >"$out" 2>"$outdir/logs/$name.log"
    rc=$?
    case $rc in
        0) status=ok ;;
        124 | 137) status=timeout ;;
        *) status="failed(rc=$rc)" ;;
    esac
    printf '%s\t%s\t%s\t%s\n' "$name" "$status" $(($(date +%s) - t0)) \
        "$(grep -v XDG_RUNTIME_DIR "$outdir/logs/$name.log" | tail -n 1 | tr '\t' ' ' | cut -c1-200)" \
        >>"$outdir/steps.tsv"
    note "$name: $status in $(($(date +%s) - t0)) s"
    return $rc
}

skip() { printf '%s\tskipped\t0\t%s\n' "$1" "$2" >>"$outdir/steps.tsv"; note "$1: skipped, $2"; }

# The GPU machine has the NVIDIA driver but maybe no Vulkan loader: prepare.sh carries it in .gl/.
gpu_setup() {
    if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
        if compgen -G '.gl/*.deb' >/dev/null && [ "$(id -u)" = 0 ]; then
            for f in .gl/*.deb; do dpkg -x "$f" /; done
            ldconfig
            note "unpacked the Vulkan/EGL loaders from .gl/"
        else
            note "no libvulkan.so.1 and no .gl/*.deb to unpack as root: gputrain may find no Vulkan adapter"
        fi
    fi
    # Tests built elsewhere run `gputrain` from the path cargo baked into them (CARGO_BIN_EXE_gputrain).
    if [ -n "$bundle" ] && [ -f "$bundle/bin_path" ]; then
        local baked
        baked=$(cat "$bundle/bin_path")
        if [ ! -e "$baked" ] && mkdir -p "$(dirname "$baked")" 2>/dev/null && cp "$bin" "$baked"; then
            note "copied $bin to $baked, where the CLI tests look for it"
        fi
    fi
}

# A loader that finds no driver gives gputrain no adapter or only a CPU one: point it at NVIDIA's.
nvidia_icd() {
    local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    [ -f "$icd" ] && [ -z "${VK_DRIVER_FILES:-}" ] || return 1
    export VK_DRIVER_FILES=$icd
    export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
    note "no GPU adapter found: retrying with VK_DRIVER_FILES=$icd"
}

[ $local_mode = 0 ] && gpu_setup
step info 60 "$outdir/info.txt" "$bin" info
if [ $local_mode = 0 ] && ! grep -q 'device type: *\(DiscreteGpu\|IntegratedGpu\|VirtualGpu\)' "$outdir/info.txt" &&
    nvidia_icd; then
    step info-nvidia-icd 60 "$outdir/info.txt" "$bin" info
fi

# Tests: each executable once, with the default kernel choice and whatever WGPU_BACKEND says.
if [ -n "$tests_dir" ] && compgen -G "$tests_dir/*" >/dev/null; then
    tests_deadline=$(($(date +%s) + ${BENCH_TESTS_BUDGET_S:-$((150 * slow))}))
    # The merged suite (tests/gpu) first: it holds every kernel, gradient and step test.
    for exe in $(ls -d "$tests_dir"/gpu 2>/dev/null) $(ls -d "$tests_dir"/* | grep -v '/gpu$'); do
        [ -x "$exe" ] || continue
        name=$(basename "$exe")
        left=$((tests_deadline - $(date +%s)))
        if [ $left -lt 5 ]; then
            printf '%s\tskipped\t0\t0\t0\n' "$name" >>"$outdir/tests.tsv"
            continue
        fi
        t0=$(date +%s)
        step "test-$name" $((left < 120 * slow ? left : 120 * slow)) "$outdir/tests/$name.log" "$exe"
        rc=$?
        # libtest's per-test lines, not its summary, so that a binary stopped by its limit still
        # reports what passed before.
        passed=$(grep -c '^test .* \.\.\. ok$' "$outdir/tests/$name.log")
        failed=$(grep -c '^test .* \.\.\. FAILED$' "$outdir/tests/$name.log")
        status=ok; [ $rc = 0 ] || status=$([ $rc = 124 ] || [ $rc = 137 ] && echo timeout || echo failed)
        printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$passed" "$failed" $(($(date +%s) - t0)) >>"$outdir/tests.tsv"
    done
elif [ -n "$tests_dir" ]; then
    skip tests "no test executables in $tests_dir"
elif [ $local_mode = 0 ]; then
    skip tests "no .gpu/bundle.tar.xz (benches/gpu/prepare.sh makes it) and no GPUTRAIN_TESTS_DIR"
else
    skip tests "--local runs no tests unless GPUTRAIN_TESTS_DIR is set (cargo test --release runs them here)"
fi

for model in vae gan; do
    step "gputrain-$model" $((120 * slow)) "$outdir/gputrain_$model.json" \
        "$bin" bench --model $model --batch-size "$batches" --steps "$steps" --json
done
# One process per --matmul item: a size too slow for its limit loses its own rows only.
# Files are numbered so that the table keeps the order given.
i=0
for item in ${matmul//,/ }; do
    i=$((i + 1))
    step "gputrain-matmul-$item" $((90 * slow)) "$outdir/gputrain_matmul_$(printf %02d $i)_$item.json" \
        "$bin" bench --matmul "$item" --json
done

ref=benches/reference/pytorch_models.py
# One import of torch (seconds on the GPU machine) says both whether it is there and which device.
device=$("$python" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")' 2>/dev/null)
if [ -z "$device" ]; then
    for s in torch-eager torch-graph torch-matmul; do skip $s "$python cannot import torch: gputrain rows only"; done
else
    if [ $local_mode = 1 ]; then
        device=cpu
    elif [ "$device" = cpu ]; then
        note "torch sees no CUDA device: PyTorch rows are on the CPU"
    fi
    for mode in eager graph; do
        step "torch-$mode" $((120 * slow)) "$outdir/torch_$mode.json" "$python" "$ref" time --device $device \
            --batch-size "$batches" --mode $mode --steps "$steps" --warmup "$warmup" --tf32 off --json
    done
    # Only the documents gputrain finished: a killed step leaves an empty or partial file.
    shapes=()
    for f in "$outdir"/gputrain_matmul_*.json; do
        python3 -c 'import json, sys; json.load(open(sys.argv[1]))["matmul"]' "$f" 2>/dev/null && shapes+=("$f")
    done
    if [ ${#shapes[@]} -gt 0 ]; then
        step torch-matmul $((90 * slow)) "$outdir/torch_matmul.json" "$python" "$ref" matmul --device $device \
            --from-json "${shapes[@]}" --tf32 off,on --json
    else
        skip torch-matmul "no complete gputrain_matmul_*.json to take the shapes from"
    fi
fi

if ! command -v python3 >/dev/null; then
    echo "run.sh: python3 is needed for the table; the JSON files are in $outdir" >&2
    exit 1
fi
python3 benches/gpu/table.py "$outdir" >"$outdir/table.txt" || exit 1
echo
cat "$outdir/table.txt"
# The table is printed whatever failed; the exit status says whether anything did.
! cut -f2 "$outdir/steps.tsv" | grep -qv '^\(ok\|skipped\)$'
