#!/usr/bin/env bash
# Fuzzes one target with libFuzzer (cargo-fuzz, nightly), single job, with the limits every run
# here uses, then merges what it found into the committed corpus, minimised:
#
#   fuzz/run-target.sh TARGET [SECONDS] [extra libFuzzer flags...]      (default 600 s)
#
# New inputs collect in $MESHOS_FUZZ_WORK/corpus/TARGET (default ~/.cache/meshos-fuzz-work),
# crashes in fuzz/artifacts/TARGET/. Builds go to CARGO_TARGET_DIR (default
# ~/.cache/meshos-fuzz-target), apart from the workspace's stable builds.
set -euo pipefail

target="${1:?usage: fuzz/run-target.sh TARGET [SECONDS] [libFuzzer flags...]}"
seconds="${2:-600}"
shift $(( $# >= 2 ? 2 : 1 ))

FUZZ="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$FUZZ")"
WORK="${MESHOS_FUZZ_WORK:-$HOME/.cache/meshos-fuzz-work}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/meshos-fuzz-target}"

# Longest input per target: big enough for every seed, small enough to keep runs fast.
case "$target" in
    policy_bundle) max_len=32768 ;;
    diagnose_files) max_len=16384 ;;
    *) max_len=16384 ;;
esac
flags=(
    -max_total_time="$seconds"
    -max_len="$max_len"
    # The OTLP targets' whole point is bounded memory: fail on any single allocation over
    # 256 MB or a process over 2 GB.
    -rss_limit_mb=2048
    -malloc_limit_mb=256
    -timeout=10
    -print_final_stats=1
)
[ -f "$FUZZ/dicts/$target.dict" ] && flags+=(-dict="$FUZZ/dicts/$target.dict")
# The MCP target keeps a tokio runtime and SQLite threads across inputs; their allocations are
# not per-input leaks.
[ "$target" = mcp_args ] && flags+=(-detect_leaks=0)

mkdir -p "$WORK/corpus/$target" "$FUZZ/corpus/$target"
cd "$ROOT"
cargo +nightly fuzz run "$target" "$WORK/corpus/$target" "$FUZZ/corpus/$target" \
    -- "${flags[@]}" "$@"
