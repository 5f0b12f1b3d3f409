#!/usr/bin/env bash
# Builds, on a machine with Rust, what benches/gpu/run.sh needs on a GPU machine that has none:
#   .gpu/bundle.tar.xz   the release `gputrain`, every test executable (`cargo test --release
#                        --no-run`), and the path cargo baked into the CLI tests for `gputrain`
#   .gl/*.deb            the Vulkan and EGL loaders (the GPU machine has NVIDIA's driver, maybe no loader)
# then prints the sizes against the 64 MiB that may travel, and the command to run there.
#
#   bash benches/gpu/prepare.sh          (from anywhere in the repository; x86-64 Linux)
#
# The binaries go as one solid xz archive with a dictionary larger than all of them: each holds the
# same wgpu, naga and gputrain code, so the archive is 4.5x smaller than the stripped files (11.2 MiB
# for 50.9 MiB: gputrain and 5 test executables) and several fit where three would not.
set -euo pipefail
cd "$(dirname "$0")/../.."
limit=$((64 << 20))

# Both folders must stay out of what git (and so the device tool) sends unless carried.
for d in .gpu .gl; do
    git check-ignore -q "$d/probe" || { echo "/$d/" >>.git/info/exclude; echo "added /$d/ to .git/info/exclude"; }
done

cargo build --release
target=$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/tests"
cp "$target/release/gputrain" "$stage/gputrain"
# CARGO_BIN_EXE_gputrain as cargo compiles it into the tests: run.sh puts the binary there.
echo "$target/release/gputrain" >"$stage/bin_path"

# One line per test executable: "kind name path"; kinds tell the lib's and the bin's unit tests apart.
cargo test --release --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        print(m["target"]["kind"][0], m["target"]["name"], m["executable"])
' >"$stage/list"
[ -s "$stage/list" ] || { echo "prepare.sh: cargo test --no-run produced no test executables" >&2; exit 1; }
while read -r kind name path; do
    case $kind in lib | bin) name="$name-$kind" ;; esac
    cp "$path" "$stage/tests/$name"
done <"$stage/list"
rm "$stage/list"
strip --strip-unneeded "$stage/gputrain" "$stage"/tests/*
raw=$(du -sb "$stage" | cut -f1)

mkdir -p .gpu
tar -C "$stage" -cf - . | xz -T1 --lzma2=preset=6,dict=256MiB >.gpu/bundle.tar.xz.new
mv .gpu/bundle.tar.xz.new .gpu/bundle.tar.xz

# The device tool's recipe for the loaders, for amd64 whatever this machine's own architecture.
if ! compgen -G '.gl/libvulkan1_*.deb' >/dev/null; then
    mkdir -p .gl /tmp/amd64/partial
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    # shellcheck disable=SC2086
    apt-get $o update >/dev/null
    # shellcheck disable=SC2086
    (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi

tree=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -n 1 | cut -f1)
bundle=$(du -sb .gpu/bundle.tar.xz | cut -f1)
gl=$(du -sb .gl | cut -f1)
total=$((tree + bundle + gl))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo
echo "test executables: $(tar -tJf .gpu/bundle.tar.xz | grep -c '^./tests/.')"
echo "binaries stripped: $(mib "$raw"); .gpu/bundle.tar.xz: $(mib "$bundle"); .gl: $(mib "$gl"); working tree: $(mib "$tree")"
echo "travels in all: $(mib "$total") of 64 MiB"
if [ "$total" -gt "$limit" ]; then
    echo "prepare.sh: too big to carry; merge test binaries or carry fewer" >&2
    exit 1
fi
cat <<'EOF'

On the GPU machine (device tool), from the repository root:
  run(carry=[".gpu", ".gl"], timeout_s=480, command=
    "bash benches/gpu/run.sh /tmp/gpubench; rc=$?; tar czf $OUT/gpubench.tgz -C /tmp gpubench; cp /tmp/gpubench/table.txt $OUT/; exit $rc")
Anywhere else with an NVIDIA GPU, Vulkan and PyTorch: bash benches/gpu/run.sh OUTDIR
EOF
