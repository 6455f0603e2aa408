// Reading a bundle's JSON files: JSON.parse, then Ajv against the bundle schema (the JSON Schema that
// deepsquare ships and copies into every bundle as model.schema.json), then the checks a schema cannot
// express. Each refusal says which file, which field and what to do, in this page's words.
//
// The schema comes from the server that serves this page (bundle.schema.json: the schema of the
// deepsquare that serves it), else from the bundle's own model.schema.json (a plain static server).
// Ajv is passed in: the page loads ajv-dist's browser build, Node's tests its CommonJS export.

export class BundleProblem extends Error {}

export const SCHEMA_URLS = ['bundle.schema.json']; // tried in order before the bundle's model.schema.json
const BUNDLE_COPY = 'model.schema.json';
const KNOWN = new Set(['deepsquare-bundle/1', 'deepsquare-bundle/2']);

/** JSON text -> value, or a BundleProblem naming the file. */
export function parseJson(bytes, where) {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (exc) {
    throw new BundleProblem(`${where} is not valid JSON (${exc.message}); re-export the bundle`);
  }
}

function fieldPath(instancePath) {
  if (!instancePath) return '';
  return instancePath.slice(1).split('/').map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce((text, part) => (/^\d+$/.test(part) ? `${text}[${part}]` : text ? `${text}.${part}` : part), '');
}

const shown = (value) => {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 57)}...` : text;
};

/** One Ajv error -> "field: what is wrong (found X)". */
export function describeError(error) {
  const path = fieldPath(error.instancePath);
  const field = path || 'the top level';
  const p = error.params ?? {};
  switch (error.keyword) {
    case 'required':
      return path ? `${path}: the field "${p.missingProperty}" is missing` : `the field "${p.missingProperty}" is missing`;
    case 'additionalProperties':
      return `${path ? `${path}: ` : ''}"${p.additionalProperty}" is not a field this bundle version has`;
    case 'type':
      return `${field} must be ${p.type === 'integer' ? 'a whole number' : `of type ${p.type}`}, found ${shown(error.data)}`;
    case 'enum':
      return `${field} must be one of ${p.allowedValues.map(shown).join(', ')}, found ${shown(error.data)}`;
    case 'const':
      return `${field} must be ${shown(p.allowedValue)}, found ${shown(error.data)}`;
    case 'pattern': {
      const described = error.parentSchema?.description;
      return `${field} has the wrong form, found ${shown(error.data)}${described ? `; expected: ${described}` : ''}`;
    }
    case 'minimum': case 'maximum': case 'exclusiveMinimum': case 'exclusiveMaximum':
      return `${field} must be ${p.comparison} ${p.limit}, found ${shown(error.data)}`;
    case 'minItems': case 'maxItems':
      return `${field} must have ${error.keyword === 'minItems' ? 'at least' : 'at most'} ${p.limit} item(s), found ${Array.isArray(error.data) ? error.data.length : shown(error.data)}`;
    case 'minLength':
      return p.limit === 1 ? `${field} must not be empty` : `${field} must have at least ${p.limit} characters, found ${shown(error.data)}`;
    case 'uniqueItems':
      return `${field} lists the same value twice (items ${p.j} and ${p.i})`;
    default:
      return `${field} ${error.message}${error.data !== undefined ? `, found ${shown(error.data)}` : ''}`;
  }
}

/** The errors worth showing: Ajv reports "must match then/else schema" after the real one. */
function firstError(errors) {
  return errors.find((e) => !['if', 'then', 'else', 'allOf', 'anyOf', 'oneOf', '$ref'].includes(e.keyword)) ?? errors[0];
}

/**
 * Compiled validators for model.json, golden.json and samples.json from one schema document.
 * @param Ajv the Ajv (draft-07) class
 */
export function makeValidators(Ajv, schema, source) {
  if (typeof schema?.$id !== 'string' || !schema.$id.startsWith('urn:deepsquare:schema:deepsquare-bundle/')) {
    throw new BundleProblem(`${source} is not deepsquare's bundle schema (its $id is ${shown(schema?.$id)})`);
  }
  const ajv = new Ajv({ allErrors: false, verbose: true, strict: false });
  // golden.json and samples.json: the same document with its root replaced by one of its definitions
  const part = (name) => ajv.compile({ $schema: schema.$schema, definitions: schema.definitions, allOf: [{ $ref: `#/definitions/${name}` }] });
  const wrap = (validate) => (data, where) => {
    if (!validate(data)) throw new BundleProblem(`${where} does not follow the bundle schema (${schema.$id}): ${describeError(firstError(validate.errors))}`);
    return data;
  };
  const versions = schema.properties?.schema?.enum ?? [];
  const meta = wrap(ajv.compile(schema));
  const checkVersion = (data, where) => {
    const version = data?.schema;
    if (data && typeof data === 'object' && !Array.isArray(data) && !versions.includes(version)) {
      throw new BundleProblem(`${where} is ${version === undefined ? 'a bundle without a "schema" version' : `a ${shown(version)} bundle`}; this page reads ${versions.join(' and ')} (re-export it, or serve it with the deepsquare that wrote it)`);
    }
    return meta(data, where);
  };
  return { id: schema.$id, source, meta: checkVersion, golden: wrap(part('golden')), samples: wrap(part('samples')) };
}

/** The checks the schema cannot express; returns the meta with defaults of older versions filled in. */
export function checkMeta(meta, where) {
  if (!KNOWN.has(meta.schema)) throw new BundleProblem(`${where}: this page reads bundle versions ${[...KNOWN].join(' and ')}, not ${shown(meta.schema)}`);
  const v1 = meta.schema === 'deepsquare-bundle/1';
  const formats = {};
  for (const [name, entry] of Object.entries(meta.formats ?? {})) {
    formats[name] = { precision: 'fp32', extra: {}, ...entry, input_dtype: entry.input_dtype ?? (entry.layout === 'image' ? 'image' : 'float32') };
  }
  const files = Object.entries(formats).map(([name, e]) => [e.file, name]);
  const twice = files.find(([file], i) => files.findIndex(([other]) => other === file) !== i);
  if (twice) throw new BundleProblem(`${where}: formats ${files.find(([f]) => f === twice[0])[1]} and ${twice[1]} name the same file ${twice[0]}`);
  for (const file of Object.keys(meta.sha256 ?? {})) {
    if (!files.some(([f]) => f === file)) throw new BundleProblem(`${where}: sha256 lists ${file}, which no format uses`);
  }
  return { ...meta, input: meta.input ?? 'float', golden: v1 ? null : meta.golden, samples: v1 ? null : meta.samples, formats };
}

/** golden.json against this bundle: what a schema cannot see. */
export function checkGolden(golden, meta, where) {
  for (const [name, entry] of Object.entries(golden.formats)) {
    if (entry.values.length !== meta.classes.length) {
      throw new BundleProblem(`${where}: formats.${name}.values has ${entry.values.length} values, but model.json lists ${meta.classes.length} classes`);
    }
  }
  if (golden.label !== null && !meta.classes.includes(golden.label)) {
    throw new BundleProblem(`${where}: its label ${shown(golden.label)} is not one of model.json's classes`);
  }
  return golden;
}

export function checkSamples(samples, meta, where) {
  const unknown = samples.find((s) => !meta.classes.includes(s.label));
  if (unknown) throw new BundleProblem(`${where}: ${unknown.file} is labelled ${shown(unknown.label)}, not one of model.json's classes`);
  return samples;
}

/** sha256 hex digest of bytes, or null where the browser has no WebCrypto (a page not served from localhost/https). */
export async function sha256Hex(bytes) {
  if (!globalThis.crypto?.subtle) return null;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

async function fetchBytes(url) {
  const response = await fetch(url, { cache: 'no-store' });
  if (!response.ok) return { status: response.status };
  return { status: response.status, body: await response.arrayBuffer() };
}

/** The schema: the server's first, else the bundle's own copy. */
async function loadValidators(Ajv, entry) {
  for (const url of [...SCHEMA_URLS, `${entry.url}${BUNDLE_COPY}`]) {
    const got = await fetchBytes(url);
    if (!got.body) continue;
    const where = url === `${entry.url}${BUNDLE_COPY}` ? `${entry.name}/${BUNDLE_COPY}` : url;
    return makeValidators(Ajv, parseJson(got.body, where), where);
  }
  throw new BundleProblem(`no bundle schema to check ${entry.name}/model.json against: the server has no bundle.schema.json and the bundle no ${BUNDLE_COPY} (serve it with deepsquare serve)`);
}

/**
 * Fetch and check a bundle's model.json, golden.json and samples.json.
 * @returns {Promise<{meta, golden, samples, schema}>} golden / samples null when the bundle has none
 */
export async function readBundle(Ajv, entry) {
  const where = `${entry.name}/model.json`;
  const got = await fetchBytes(`${entry.url}model.json`);
  if (got.status === 404) throw new BundleProblem(`${entry.name} is not a deepsquare bundle: it has no model.json (make one with deepsquare export)`);
  if (!got.body) throw new BundleProblem(`cannot read ${where} (HTTP ${got.status})`);
  const data = parseJson(got.body, where);
  const validators = await loadValidators(Ajv, entry);
  const meta = checkMeta(validators.meta(data, where), where);
  const optional = async (file, validate, check) => {
    if (!file) return null;
    const found = await fetchBytes(`${entry.url}${file}`);
    const at = `${entry.name}/${file}`;
    if (!found.body) throw new BundleProblem(`${at} is named in model.json but ${found.status === 404 ? 'missing from the bundle folder' : `cannot be read (HTTP ${found.status})`}; re-export the bundle`);
    return check(validate(parseJson(found.body, at), at), meta, at);
  };
  const golden = await optional(meta.golden, validators.golden, checkGolden);
  const samples = await optional(meta.samples, validators.samples, checkSamples);
  return { meta, golden, samples, schema: { id: validators.id, source: validators.source } };
}

export { fetchBytes };
