#!/usr/bin/env bash
# Differential MCP conformance: does putting the proxy in front of a backend
# change the outcome of any scenario of the official suite?
#
#   diff.sh DIRECT_URL PROXY_URL [extra suite args, e.g. --spec-version 2026-07-28]
#
# The backend is never fully conformant (the suite expects fixture tools,
# prompts and resources that a test backend does not have), so absolute
# results say little. What matters is that the proxy neither breaks a
# scenario the backend passes nor makes one pass that the backend fails.
#
#   1. run `server --url DIRECT_URL`; the scenarios that fail there are the
#      baseline, written to $OUT/baseline.yml;
#   2. run `server --url PROXY_URL --expected-failures $OUT/baseline.yml`, so
#      the suite itself also checks the proxy against that baseline;
#   3. compare the per-scenario outcomes of both runs and print, on stderr,
#      every scenario whose outcome differs.
#
# A scenario fails if any of its checks is a FAILURE or a WARNING, which is
# how the suite's own --expected-failures check counts. The summary line
# marks only FAILUREs, so WARNINGs are read from the checks.json files of
# the results directory.
#
# Exit status: 0 = same pass/fail set through the proxy (and the suite's
# baseline check agrees); 1 = an outcome differs; 2 = usage error, or a run
# gave no summary to compare (suite crashed, server unreachable, --scenario).
#
# Environment:
#   CONFORMANCE  (required) command that runs the suite's CLI, split on
#                whitespace, e.g. "node22 node_modules/conformance-0.1/dist/index.js"
#                (Node >= 22: the suite uses fs.globSync).
#   OUT          results directory (default ./conformance-out); each run
#                replaces what an earlier one left there.
set -euo pipefail

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" >&2; exit 2; }
[ $# -ge 2 ] || usage
direct_url=$1 proxy_url=$2
shift 2
if [ -z "${CONFORMANCE:-}" ]; then
  echo "diff.sh: set CONFORMANCE to the command that runs the conformance CLI" >&2
  exit 2
fi
read -r -a conformance <<<"$CONFORMANCE"
out=${OUT:-./conformance-out}
mkdir -p "$out"

# run NAME URL [suite args]: one suite run, its log in $out/NAME.txt and its
# checks.json files under $out/NAME/. Returns the suite's exit status.
run() {
  local name=$1 url=$2
  shift 2
  # Result directories carry a timestamp, so stale ones from an earlier run
  # would be read as this run's.
  rm -rf "${out:?}/$name"
  "${conformance[@]}" server --url "$url" -o "$out/$name" "$@" >"$out/$name.txt" 2>&1
}

# outcomes NAME: "scenario<TAB>pass|fail<TAB>summary counts" per scenario of
# run NAME, sorted by scenario; fails if the run printed no summary.
outcomes() {
  local name=$1 log=$out/$1.txt mark scenario counts outcome checks
  grep -q '^=== SUMMARY ===' "$log" || return 1
  # Only the lines after the summary header: scenario logs may contain
  # check marks too.
  sed -n '/^=== SUMMARY ===/,$p' "$log" | grep -E '^(✓|✗) [^ ]+: ' |
    while read -r mark scenario counts; do
      scenario=${scenario%:}
      outcome=fail
      if [ "$mark" = "✓" ]; then
        outcome=pass
        # The directory is "server-<scenario>-<ISO timestamp>"; anchoring on
        # the timestamp keeps "tools-call" from matching "tools-call-image".
        for checks in "$out/$name/server-$scenario"-[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T*Z/checks.json; do
          if [ -f "$checks" ] && grep -qE '"status": *"WARNING"' "$checks"; then
            outcome=fail
            counts="$counts (with warnings)"
          fi
        done
      fi
      printf '%s\t%s\t%s\n' "$scenario" "$outcome" "$counts"
    done | LC_ALL=C sort
}

totals() { grep -E '^Total:' "$out/$1.txt" || true; }

no_summary() {
  echo "diff.sh: the $1 run printed no per-scenario summary; last lines of $out/$1.txt:" >&2
  tail -n 20 "$out/$1.txt" >&2
  exit 2
}

echo "== direct: $direct_url" >&2
run direct "$direct_url" "$@" || true # failing scenarios are expected here
outcomes direct >"$out/direct.outcomes" || no_summary direct
echo "   $(totals direct)" >&2

# An empty list must be written as [], not as a bare key: both suites
# reject `server:` with no value (null is not an array).
{
  echo "# Scenarios that fail against $direct_url; the proxy must fail exactly these."
  if awk -F'\t' '$2 == "fail" { found = 1 } END { exit !found }' "$out/direct.outcomes"; then
    echo "server:"
    awk -F'\t' '$2 == "fail" { printf "  - \"%s\"\n", $1 }' "$out/direct.outcomes"
  else
    echo "server: []"
  fi
} >"$out/baseline.yml"
expected=$(awk -F'\t' '$2 == "fail"' "$out/direct.outcomes" | wc -l)

echo "== proxy: $proxy_url (baseline: $expected failing scenarios)" >&2
suite_status=0
run proxy "$proxy_url" --expected-failures "$out/baseline.yml" "$@" || suite_status=$?
outcomes proxy >"$out/proxy.outcomes" || no_summary proxy
echo "   $(totals proxy)" >&2

# Per-scenario comparison. An outcome change is a difference; a change in
# check counts with the same outcome (a failing scenario failing more
# checks) is shown as a note, since it can point at the proxy too.
changed=0
LC_ALL=C join -t $'\t' -a 1 -a 2 -e '-' -o 0,1.2,2.2,1.3,2.3 \
  "$out/direct.outcomes" "$out/proxy.outcomes" |
  awk -F'\t' '
    $2 == "-" { printf "  + %s: only through the proxy (%s)\n", $1, $3; n++; next }
    $3 == "-" { printf "  - %s: only direct (%s)\n", $1, $2; n++; next }
    $2 != $3  { printf "  ! %s: %s direct, %s through the proxy (direct: %s; proxy: %s)\n", $1, $2, $3, $4, $5; n++; next }
    $4 != $5  { printf "    note: %s: %s both ways, but direct: %s; proxy: %s\n", $1, $2, $4, $5 }
    END { exit n > 0 }' >"$out/diff.txt" || changed=1
cat "$out/diff.txt" >&2

if [ "$changed" = 0 ] && [ "$suite_status" = 0 ]; then
  echo "same pass/fail set for all $(wc -l <"$out/direct.outcomes") scenarios" >&2
  exit 0
fi
if [ "$changed" = 0 ]; then
  # The outcomes agree by our reading but the suite's own baseline check
  # did not pass; trust the stricter of the two.
  echo "per-scenario outcomes agree, but the suite's baseline check exited $suite_status:" >&2
  sed -n '/^Total:/,$p' "$out/proxy.txt" | tail -n +2 >&2
  exit 1
fi
echo "the proxy changes the outcome of the scenarios above (suite exit $suite_status; logs in $out)" >&2
exit 1
