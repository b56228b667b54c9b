#!/usr/bin/env bash
# Renders page 1 of a sample consumer invoice, business invoice and credit note, issued by
# the real invoicing code against a throwaway database, into docs/billing/.
# usage: scripts/invoice-samples.sh   (after `make venv testdb`)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source .cache/test-postgres/env
artifacts=$(mktemp -d)
trap 'rm -rf "$artifacts"' EXIT
FTA_TEST_ARTIFACTS="$artifacts" .venv/bin/pytest -q -p no:warnings \
  tests/integration/test_billing_invoices.py -k test_sample_documents_render
mkdir -p docs/billing
for name in consumer-invoice business-invoice credit-note; do
  cp "$artifacts/sample-$name.png" "docs/billing/$name.png"
done
echo "docs/billing/: consumer-invoice.png business-invoice.png credit-note.png"
