// Checks a function tool's definition as the function editor's text: JSON that parses, a valid name, and
// parameters that are a JSON Schema (validated against the draft-07 meta-schema by @cfworker/json-schema, which
// needs no eval under the page's Content-Security-Policy). Loaded only when a function is edited.

import { Validator } from "../vendor/cfworker-json-schema/index.js";

const NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const FIELDS = new Set(["name", "description", "parameters", "strict"]);
let meta = null;

async function metaValidator() {
  if (!meta) {
    const url = new URL("../vendor/ajv/json-schema-draft-07.json", import.meta.url);
    const schema = await (await fetch(url)).json();
    meta = new Validator(schema, "7", false);
  }
  return meta;
}

function where(location) {
  return location && location !== "#" ? `parameters${location.slice(1).replaceAll("/", ".")}` : "parameters";
}

/** Returns {value, errors}: the parsed definition, and sentences saying what is wrong with it (none: valid). */
export async function checkFunction(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (exc) {
    return { value: null, errors: [`Not valid JSON: ${exc.message}`] };
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    return { value: null, errors: ["A function is a JSON object with a name, a description and parameters."] };
  }
  const errors = [];
  for (const key of Object.keys(value)) if (!FIELDS.has(key)) errors.push(`Unknown field "${key}".`);
  if (typeof value.name !== "string" || !NAME.test(value.name)) {
    errors.push("name: 1 to 64 letters, digits, underscores or dashes.");
  }
  if (value.description !== undefined && typeof value.description !== "string") errors.push("description: a string.");
  if (value.strict !== undefined && typeof value.strict !== "boolean") errors.push("strict: true or false.");
  if (value.parameters !== undefined) {
    const p = value.parameters;
    if (!p || typeof p !== "object" || Array.isArray(p)) {
      errors.push("parameters: a JSON Schema object.");
    } else {
      const result = (await metaValidator()).validate(p);
      // The meta-schema reports each failure up the tree; the deepest ones say what to fix.
      const seen = new Set();
      const deepest = result.errors.filter((e) => !/^(properties|additionalProperties|anyOf|allOf|\$ref)$/.test(e.keyword));
      for (const e of deepest.length ? deepest : result.errors) {
        const line = `${where(e.instanceLocation)}: ${e.error}`;
        if (!seen.has(line)) errors.push(line);
        seen.add(line);
      }
      if (result.valid && p.type !== "object") errors.push('parameters: the schema of the arguments must have "type": "object".');
    }
  }
  return { value, errors };
}
