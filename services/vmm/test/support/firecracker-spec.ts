/**
 * Firecracker's Swagger 2.0 contract (test/fixtures/firecracker/*.yaml, vendored) turned into JSON Schemas and
 * checked with ajv: which requests exist, whether a body is valid for its path and method, and
 * whether a response has a shape the spec defines.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';

export const SPEC_VERSIONS = ['1.16.1', '1.7.0'] as const;
export type SpecVersion = (typeof SPEC_VERSIONS)[number];

const SPEC_DIR = fileURLToPath(new URL('../fixtures/firecracker/', import.meta.url));

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
interface SwaggerOperation {
  summary?: string;
  parameters?: { in: string; name: string; schema?: Json; required?: boolean }[];
  responses: Record<string, { schema?: Json }>;
}

/** Swagger-only or annotation keywords that JSON Schema validation does not need. */
const DROPPED = new Set(['description', 'example', 'readOnly', 'summary', 'default']);

/**
 * Converts one Swagger schema node. Firecracker deserializes request bodies with serde's
 * deny_unknown_fields, so request schemas forbid properties the spec does not list; response
 * schemas stay open (a newer Firecracker may add fields).
 */
function toJsonSchema(node: Json, id: string, strictObjects: boolean): Json {
  if (Array.isArray(node)) return node.map((n) => toJsonSchema(n, id, strictObjects));
  if (node === null || typeof node !== 'object') return node;
  if (typeof node.$ref === 'string')
    return { $ref: node.$ref.replace('#/definitions/', `${id}#/definitions/`) };
  const out: Record<string, Json> = {};
  for (const [key, value] of Object.entries(node)) {
    if (DROPPED.has(key)) continue;
    if (key === 'format') {
      // int32/int64 are bounds hints; MmdsConfig.ipv4_address carries a regex as its "format".
      if (typeof value === 'string' && value.includes('(')) out.pattern = `^${value}$`;
      continue;
    }
    if (key === 'properties' && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      out.properties = Object.fromEntries(
        Object.entries(value).map(([name, schema]) => [name, toJsonSchema(schema, id, strictObjects)]),
      );
      continue;
    }
    out[key] = toJsonSchema(value, id, strictObjects);
  }
  if (
    strictObjects &&
    out.type === 'object' &&
    out.properties !== undefined &&
    out.additionalProperties === undefined
  )
    out.additionalProperties = false;
  return out;
}

export interface SpecOperation {
  readonly template: string;
  readonly method: string;
  readonly pathParams: Record<string, string>;
  readonly operation: SwaggerOperation;
}

export class FirecrackerSpec {
  readonly version: SpecVersion;
  readonly #paths: Record<string, Record<string, SwaggerOperation>>;
  readonly #ajv: Ajv;
  readonly #validators = new Map<string, ValidateFunction>();

  private constructor(version: SpecVersion) {
    this.version = version;
    const doc = parse(readFileSync(`${SPEC_DIR}firecracker-v${version}.yaml`, 'utf8')) as {
      paths: Record<string, Record<string, SwaggerOperation>>;
      definitions: Record<string, Json>;
    };
    this.#paths = doc.paths;
    this.#ajv = new Ajv({ allErrors: true, strict: true });
    for (const strict of [true, false]) {
      const id = this.#schemaId(strict);
      this.#ajv.addSchema({ $id: id, definitions: toJsonSchema(doc.definitions as Json, id, strict) });
    }
  }

  static #cache = new Map<SpecVersion, FirecrackerSpec>();
  static load(version: SpecVersion): FirecrackerSpec {
    let spec = FirecrackerSpec.#cache.get(version);
    if (!spec) FirecrackerSpec.#cache.set(version, (spec = new FirecrackerSpec(version)));
    return spec;
  }

  #schemaId(strict: boolean): string {
    return `firecracker-v${this.version}-${strict ? 'requests' : 'responses'}`;
  }

  /** The spec operation for a concrete request, or undefined when the spec does not define it. */
  findOperation(method: string, path: string): SpecOperation | undefined {
    const lower = method.toLowerCase();
    for (const [template, operations] of Object.entries(this.#paths)) {
      const names: string[] = [];
      const pattern = new RegExp(
        `^${template.replace(/\{([^}]+)\}/g, (_, name: string) => (names.push(name), '([^/]+)'))}$`,
      );
      const match = pattern.exec(path.split('?')[0] ?? '');
      const operation = operations[lower];
      if (!match || !operation) continue;
      const pathParams = Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(match[i + 1] ?? '')]));
      return { template, method: lower, pathParams, operation };
    }
    return undefined;
  }

  #validator(key: string, schema: Json, strict: boolean): ValidateFunction {
    let validate = this.#validators.get(key);
    if (!validate)
      this.#validators.set(
        key,
        (validate = this.#ajv.compile(toJsonSchema(schema, this.#schemaId(strict), strict) as object)),
      );
    return validate;
  }

  /** Problems with a request: empty when the spec defines it and its body is valid. */
  validateRequest(method: string, path: string, body: unknown): string[] {
    const op = this.findOperation(method, path);
    if (!op) return [`v${this.version} does not define ${method} ${path}`];
    const bodyParam = op.operation.parameters?.find((p) => p.in === 'body');
    if (!bodyParam?.schema)
      return body === undefined ? [] : [`v${this.version} ${method} ${op.template} takes no body`];
    if (body === undefined)
      return bodyParam.required ? [`v${this.version} ${method} ${op.template} requires a body`] : [];
    const validate = this.#validator(`req ${op.method} ${op.template}`, bodyParam.schema, true);
    return validate(body)
      ? []
      : (validate.errors ?? []).map(
          (e) =>
            `v${this.version} ${method} ${path}: body${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`,
        );
  }

  /** Problems with a response: its status must be declared (or covered by `default`) and its body match. */
  validateResponse(method: string, path: string, status: number, body: unknown): string[] {
    const op = this.findOperation(method, path);
    if (!op) return [`v${this.version} does not define ${method} ${path}`];
    const declared =
      op.operation.responses[String(status)] ?? (status >= 300 ? op.operation.responses.default : undefined);
    if (!declared) return [`v${this.version} ${method} ${op.template} declares no ${status} response`];
    if (!declared.schema)
      return body === undefined
        ? []
        : [`v${this.version} ${method} ${op.template} ${status} has no body in the spec`];
    const validate = this.#validator(`res ${op.method} ${op.template} ${status}`, declared.schema, false);
    return validate(body)
      ? []
      : (validate.errors ?? []).map(
          (e) => `v${this.version} ${method} ${path} ${status}: body${e.instancePath} ${e.message}`,
        );
  }

  /**
   * When the spec allows a request: its summary says "Pre-boot only." or "Post-boot only."; other
   * requests are allowed in both phases as far as the spec says.
   */
  bootPhase(method: string, path: string): 'pre-boot' | 'post-boot' | undefined {
    const summary = this.findOperation(method, path)?.operation.summary ?? '';
    if (/\bPre-boot only\b/i.test(summary)) return 'pre-boot';
    if (/\bPost-boot only\b/i.test(summary)) return 'post-boot';
    return undefined;
  }

  /** Whether a definition declares the named property (for fields the driver reads). */
  definitionHasProperty(definition: string, property: string): boolean {
    const def = (this.#ajv.getSchema(`${this.#schemaId(false)}#/definitions/${definition}`)?.schema ??
      {}) as { properties?: Record<string, unknown> };
    return def.properties?.[property] !== undefined;
  }
}
