#!/usr/bin/env bash
# Fails when a file of the repository holds a secret-shaped string that the reviewed
# baseline (.secrets.baseline) does not list. Files about to be added (untracked, not
# ignored) are scanned too, so a key is caught before its first commit.
#
# After adding a test fixture that looks like a secret: mark its line with
# `# pragma: allowlist secret`, or refresh and review the baseline:
#   detect-secrets scan --baseline .secrets.baseline && detect-secrets audit .secrets.baseline
set -euo pipefail
cd "$(dirname "$0")/.."

hook="${DETECT_SECRETS_HOOK:-.venv/bin/detect-secrets-hook}"
if [ ! -x "$hook" ]; then
  hook="$(command -v detect-secrets-hook)" || {
    echo "secret-scan: detect-secrets is not installed (make venv)" >&2
    exit 2
  }
fi

# The hook rewrites a baseline whose line numbers drifted: give it a copy, so that a scan
# never edits the tree.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp .secrets.baseline "$work/baseline"

files=()
while IFS= read -r -d '' path; do
  [ -f "$path" ] && files+=("$path")
done < <(git ls-files -z --cached --others --exclude-standard)

status=0
"$hook" --baseline "$work/baseline" "${files[@]}" >"$work/report" 2>&1 || status=$?
case "$status" in
  0) echo "secret-scan: ${#files[@]} files, no new secret" ;;
  # 3: nothing new, but known findings moved: the hook rewrote its copy of the baseline.
  3) echo "secret-scan: ${#files[@]} files, no new secret (the baseline's line numbers" \
       "are stale: detect-secrets scan --baseline .secrets.baseline refreshes them)" ;;
  *) cat "$work/report" >&2
     echo "secret-scan: FAILED, a secret-shaped string is not in .secrets.baseline" >&2
     exit 1 ;;
esac
