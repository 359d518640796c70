import assert from "node:assert/strict";
import { embeddedSettings, PROBLEM, send, sleep, startService, waitFor } from "./_helpers.ts";

const CONFIG = "/api/v1/config";
const MASK = "******";

type Svc = Awaited<ReturnType<typeof startService>>;

/** POST /api/v1/config, asserting 201; returns the response and its JSON. */
async function create(
  svc: Svc,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
  // deno-lint-ignore no-explicit-any
): Promise<{ res: Response; json: any }> {
  const res = await send(svc.app, "POST", CONFIG, body, headers);
  const json = await res.json();
  assert.equal(res.status, 201, `create ${body.key}: ${JSON.stringify(json)}`);
  return { res, json };
}

/** PUT /api/v1/config/{key}, asserting 200; returns the JSON. */
async function update(
  svc: Svc,
  key: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
) {
  const res = await send(svc.app, "PUT", `${CONFIG}/${encodeURIComponent(key)}`, body, headers);
  const json = await res.json();
  assert.equal(res.status, 200, `update ${key}: ${JSON.stringify(json)}`);
  return json;
}

/** GET a path, asserting 200; returns the JSON. */
async function getJson(svc: Svc, path: string, headers: Record<string, string> = {}) {
  const res = await send(svc.app, "GET", path, undefined, headers);
  const json = await res.json();
  assert.equal(res.status, 200, `GET ${path}: ${JSON.stringify(json)}`);
  return json;
}

/** Asserts a problem+json answer with `status`, naming `field` in `errors[]` when given. */
async function assertProblem(res: Response, status: number, field?: string) {
  const text = await res.text();
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${text}`);
  assert.equal(res.headers.get("content-type"), PROBLEM, text);
  const p = JSON.parse(text);
  assert.equal(p.status, status);
  assert.equal(typeof p.title, "string");
  assert.equal(typeof p.detail, "string");
  if (field !== undefined) {
    assert.ok(Array.isArray(p.errors), `errors[] in ${text}`);
    assert.ok(
      p.errors.some((e: { field: string }) => e.field === field),
      `errors[] names ${field}: ${text}`,
    );
  }
  return p;
}

/** X-Config-Index of a list of `query`. */
async function listIndex(svc: Svc, query = "environment=development"): Promise<number> {
  const res = await send(svc.app, "GET", `${CONFIG}?${query}`);
  assert.equal(res.status, 200);
  await res.body?.cancel();
  const h = res.headers.get("x-config-index");
  assert.match(h ?? "", /^\d+$/, "X-Config-Index is a number");
  return Number(h);
}

/**
 * The X-Config-Index of a list made right after writes, asserted to cover them: the write's
 * sequence reaches the index the HTTP side serves before the write is acknowledged.
 */
async function settledIndex(svc: Svc, atLeast: number): Promise<number> {
  const i = await listIndex(svc);
  assert.ok(i >= atLeast, `X-Config-Index ${i} covers the ${atLeast} writes acknowledged`);
  return i;
}

interface SseEvent {
  id: string;
  event: string;
  // deno-lint-ignore no-explicit-any
  data: any;
}

/** Reads an SSE body frame by frame ("\n\n"-separated); comment-only frames are skipped. */
class SseReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();
  #buf = "";

  constructor(res: Response) {
    assert.ok(res.body, "stream body");
    this.#reader = res.body.getReader();
  }

  /** The next event frame; fails when none arrives within `ms`. */
  async next(ms = 1_000): Promise<SseEvent> {
    const end = Date.now() + ms;
    while (true) {
      const cut = this.#buf.indexOf("\n\n");
      if (cut >= 0) {
        const frame = this.#buf.slice(0, cut);
        this.#buf = this.#buf.slice(cut + 2);
        const fields: Record<string, string> = {};
        for (const line of frame.split("\n")) {
          if (line.startsWith(":") || line === "") continue;
          const i = line.indexOf(":");
          const name = i < 0 ? line : line.slice(0, i);
          const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
          fields[name] = fields[name] === undefined ? value : `${fields[name]}\n${value}`;
        }
        if (fields.data === undefined) continue; // comments, retry:
        return { id: fields.id, event: fields.event, data: JSON.parse(fields.data) };
      }
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no SSE event within ${ms} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no SSE event within ${ms} ms`)), left);
      });
      try {
        const { value, done } = await Promise.race([this.#reader.read(), timeout]);
        if (done) throw new Error("SSE stream ended");
        this.#buf += this.#decoder.decode(value, { stream: true });
      } finally {
        clearTimeout(timer);
      }
    }
  }

  async cancel(): Promise<void> {
    await this.#reader.cancel();
  }
}

async function watch(svc: Svc, query: string, headers: Record<string, string> = {}) {
  const res = await send(svc.app, "GET", `${CONFIG}/watch?${query}`, undefined, headers);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
  return new SseReader(res);
}

const SEED = {
  key: "model_path",
  value: "/models/asr",
  environment: "development",
  service_name: "asr-service",
  description: "Path to ASR model files",
};
const SEED_Q = "environment=development&service_name=asr-service";

// --- 1. The seed's shapes -------------------------------------------------------------------

Deno.test("POST /api/v1/config answers 201 with the seed's fields, version 1 and an ETag", async () => {
  await using svc = await startService(embeddedSettings());
  const { res, json } = await create(svc, SEED);
  assert.equal(res.headers.get("etag"), '"s1"');
  assert.equal(json.key, "model_path");
  assert.equal(json.value, "/models/asr");
  assert.equal(json.environment, "development");
  assert.equal(json.service_name, "asr-service");
  assert.equal(json.description, "Path to ASR model files");
  assert.equal(json.version, 1);
  assert.equal(json.secret, false);
  assert.equal(json.updated_by, "anonymous");
  for (const f of ["created_at", "updated_at"]) {
    assert.equal(typeof json[f], "string");
    assert.ok(!Number.isNaN(Date.parse(json[f])), `${f} is a date`);
  }
  assert.equal(json.created_at, json.updated_at);
});

Deno.test("GET /api/v1/config/:key answers the seed's fields plus scope and version", async () => {
  await using svc = await startService(embeddedSettings());
  const { json: created } = await create(svc, SEED);
  const res = await send(svc.app, "GET", `${CONFIG}/model_path?${SEED_Q}`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  assert.equal(res.headers.get("etag"), '"s1"');
  const got = await res.json();
  assert.deepEqual(got, { ...created, scope: "service" });
  for (const [k, v] of Object.entries(SEED)) assert.equal(got[k], v, k);
});

Deno.test("PUT, list, DELETE and history follow the seed's shapes", async () => {
  await using svc = await startService(embeddedSettings());
  await create(svc, SEED, { "x-user": "admin" });
  const put = await send(svc.app, "PUT", `${CONFIG}/model_path`, {
    value: "/models/asr-v2",
    environment: "development",
    service_name: "asr-service",
    description: "Updated path to ASR model files",
  }, { "x-user": "admin" });
  assert.equal(put.status, 200);
  assert.equal(put.headers.get("etag"), '"s2"');
  const updated = await put.json();
  assert.equal(updated.value, "/models/asr-v2");
  assert.equal(updated.description, "Updated path to ASR model files");
  assert.equal(updated.version, 2);

  const list = await getJson(svc, `${CONFIG}?environment=development`);
  assert.ok(Array.isArray(list));
  assert.equal(list.length, 1);
  assert.equal(list[0].key, "model_path");
  assert.equal(list[0].value, "/models/asr-v2");
  assert.equal(list[0].service_name, "asr-service");

  const history = await getJson(svc, `${CONFIG}/model_path/history?${SEED_Q}`);
  assert.deepEqual(
    history.map((h: Record<string, unknown>) => [h.version, h.value, h.updated_by]),
    [[2, "/models/asr-v2", "admin"], [1, "/models/asr", "admin"]],
  );
  for (const h of history) {
    assert.equal(h.key, "model_path");
    assert.equal(h.environment, "development");
    assert.equal(h.service_name, "asr-service");
    assert.equal(typeof h.updated_at, "string");
  }
  assert.deepEqual(history.map((h: { change_type: string }) => h.change_type), [
    "updated",
    "created",
  ]);

  const del = await send(svc.app, "DELETE", `${CONFIG}/model_path?${SEED_Q}`);
  assert.equal(del.status, 200);
  const deleted = await del.json();
  assert.equal(deleted.deleted, true);
  assert.equal(deleted.key, "model_path");
  assert.equal(deleted.environment, "development");
  assert.equal(deleted.service_name, "asr-service");
  await assertProblem(await send(svc.app, "GET", `${CONFIG}/model_path?${SEED_Q}`), 404);
});

Deno.test("POST /api/v1/config/bulk answers a flat key → value map and omits missing keys", async () => {
  await using svc = await startService(embeddedSettings());
  await create(svc, SEED);
  await create(svc, { ...SEED, key: "batch_size", value: "32", description: null });
  await create(svc, { ...SEED, key: "timeout", value: "20" });
  const res = await send(svc.app, "POST", `${CONFIG}/bulk`, {
    keys: ["model_path", "batch_size", "timeout", "not_there"],
    environment: "development",
    service_name: "asr-service",
  });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {
    model_path: "/models/asr",
    batch_size: "32",
    timeout: "20",
  });
});

// --- 2. Scopes --------------------------------------------------------------------------------

Deno.test("GET /api/v1/config/:key falls back to the global scope", async () => {
  await using svc = await startService(embeddedSettings());
  await create(svc, { key: "timeout", value: "30", environment: "development" });
  const res = await send(svc.app, "GET", `${CONFIG}/timeout?${SEED_Q}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("etag"), '"g1"');
  const got = await res.json();
  assert.equal(got.value, "30");
  assert.equal(got.scope, "global");
  assert.equal(got.service_name, null);
  // Without service_name the global entry answers too.
  const plain = await getJson(svc, `${CONFIG}/timeout?environment=development`);
  assert.equal(plain.scope, "global");
  // Another environment has no global entry.
  await assertProblem(await send(svc.app, "GET", `${CONFIG}/timeout?environment=staging`), 404);
});

Deno.test("a service entry wins over the global one, and deleting it falls back again", async () => {
  await using svc = await startService(embeddedSettings());
  await create(svc, { key: "timeout", value: "30", environment: "development" });
  // Read once first so a cached "no service entry" answer is exercised.
  assert.equal((await getJson(svc, `${CONFIG}/timeout?${SEED_Q}`)).scope, "global");
  await create(svc, {
    key: "timeout",
    value: "20",
    environment: "development",
    service_name: "asr-service",
  });
  const own = await getJson(svc, `${CONFIG}/timeout?${SEED_Q}`);
  assert.equal(own.value, "20");
  assert.equal(own.scope, "service");
  assert.equal(own.service_name, "asr-service");
  // Another service still sees the global value.
  const other = await getJson(svc, `${CONFIG}/timeout?environment=development&service_name=tts`);
  assert.equal(other.value, "30");
  assert.equal(other.scope, "global");
  // The global scope itself is unchanged.
  assert.equal((await getJson(svc, `${CONFIG}/timeout?environment=development`)).value, "30");

  const del = await send(svc.app, "DELETE", `${CONFIG}/timeout?${SEED_Q}`);
  assert.equal(del.status, 200);
  await del.body?.cancel();
  const back = await getJson(svc, `${CONFIG}/timeout?${SEED_Q}`);
  assert.equal(back.value, "30");
  assert.equal(back.scope, "global");
});

Deno.test("POST /api/v1/config/bulk resolves the service scope, then the global one, per key", async () => {
  await using svc = await startService(embeddedSettings());
  await create(svc, { key: "a", value: "global-a", environment: "development" });
  await create(svc, { key: "b", value: "global-b", environment: "development" });
  await create(svc, { key: "a", value: "svc-a", environment: "development", service_name: "s1" });
  await create(svc, { key: "c", value: "svc-c", environment: "development", service_name: "s1" });
  await create(svc, { key: "d", value: "other-d", environment: "development", service_name: "s2" });
  await create(svc, { key: "b", value: "staging-b", environment: "staging" });
  const bulk = async (body: Record<string, unknown>) => {
    const res = await send(svc.app, "POST", `${CONFIG}/bulk`, body);
    assert.equal(res.status, 200);
    return await res.json();
  };
  assert.deepEqual(
    await bulk({ keys: ["a", "b", "c", "d"], environment: "development", service_name: "s1" }),
    { a: "svc-a", b: "global-b", c: "svc-c" },
  );
  assert.deepEqual(
    await bulk({ keys: ["a", "b", "c", "d"], environment: "development" }),
    { a: "global-a", b: "global-b" },
  );
  assert.deepEqual(await bulk({ keys: ["a", "b"], environment: "staging" }), { b: "staging-b" });
});

// --- 3. Values --------------------------------------------------------------------------------

Deno.test("values of every JSON type round-trip and strings stay strings", async () => {
  await using svc = await startService(embeddedSettings());
  const values: Record<string, unknown> = {
    str_num: "32",
    str_bool: "true",
    str_null: "null",
    str_empty: "",
    num: 32,
    float: -3.25,
    zero: 0,
    yes: true,
    no: false,
    nothing: null,
    obj: { host: "db", port: 5432, tags: ["a", { nested: null }] },
    arr: [1, "two", false, null, { three: 3 }],
    empty_obj: {},
    empty_arr: [],
  };
  for (const [key, value] of Object.entries(values)) {
    const { json } = await create(svc, { key, value, environment: "development" });
    assert.deepEqual(json.value, value, `POST answer of ${key}`);
  }
  for (const [key, value] of Object.entries(values)) {
    const got = await getJson(svc, `${CONFIG}/${key}?environment=development`);
    assert.deepEqual(got.value, value, `GET of ${key}`);
  }
  const list = await getJson(svc, `${CONFIG}?environment=development`);
  assert.equal(list.length, Object.keys(values).length);
  for (const e of list) assert.deepEqual(e.value, values[e.key], `list of ${e.key}`);

  const res = await send(svc.app, "POST", `${CONFIG}/bulk`, {
    keys: Object.keys(values),
    environment: "development",
  });
  assert.deepEqual(await res.json(), values);

  // An update may change the type.
  const changed = await update(svc, "num", { value: "32", environment: "development" });
  assert.equal(changed.value, "32");
  const history = await getJson(svc, `${CONFIG}/num/history?environment=development`);
  assert.deepEqual(history.map((h: { value: unknown }) => h.value), ["32", 32]);
});

Deno.test("a number that would not read back as written is a 400 naming its path", async () => {
  await using svc = await startService(embeddedSettings());
  const env = '"environment": "development"';
  const cases: [string, string][] = [
    ["1e400", "value"],
    ["-1e400", "value"],
    ["12345678901234567890", "value"],
    ["9007199254740993", "value"],
    ["0.1000000000000000000001", "value"],
    ['{"limits": {"min": 1, "max": 1e400}}', "value.limits.max"],
    ['{"ids": [1, 2, 12345678901234567890]}', "value.ids.2"],
    ['[{"rate": 0.1000000000000000000001}]', "value.0.rate"],
  ];
  for (const [value, field] of cases) {
    const p = await assertProblem(
      await send(svc.app, "POST", CONFIG, `{"key": "n", "value": ${value}, ${env}}`),
      400,
      field,
    );
    assert.match(p.errors[0].message, /send it as a string/, value);
  }
  const p = await assertProblem(
    await send(svc.app, "POST", CONFIG, `{"key": "n", "value": 12345678901234567890, ${env}}`),
    400,
  );
  assert.deepEqual(p.errors, [{
    field: "value",
    in: "body",
    message: "is 12345678901234567890, which would be stored as 12345678901234567000; send " +
      "it as a string to keep every digit",
  }]);
  assert.deepEqual(await getJson(svc, CONFIG), []);

  await create(svc, { key: "n", value: { limits: { max: 10 } }, environment: "development" });
  for (const [value, field] of cases) {
    await assertProblem(
      await send(svc.app, "PUT", `${CONFIG}/n`, `{"value": ${value}, ${env}}`),
      400,
      field,
    );
  }
  const got = await getJson(svc, `${CONFIG}/n?environment=development`);
  assert.deepEqual([got.version, got.value], [1, { limits: { max: 10 } }]);
});

Deno.test("numbers that read back as written are stored, respelled at most", async () => {
  await using svc = await startService(embeddedSettings());
  const value = '{"a": 1.0, "b": 1e3, "c": 1E+3, "d": 9007199254740991, "e": 0.1, "f": -0, ' +
    '"g": 0.10, "h": "12345678901234567890", "i": "1e400", "j": 9007199254740994, "k": 5e-324}';
  const stored = {
    a: 1,
    b: 1000,
    c: 1000,
    d: 9007199254740991,
    e: 0.1,
    f: 0,
    g: 0.1,
    h: "12345678901234567890",
    i: "1e400",
    j: 9007199254740994,
    k: 5e-324,
  };
  const res = await send(
    svc.app,
    "POST",
    CONFIG,
    `{"key": "n", "value": ${value}, "environment": "development"}`,
  );
  assert.equal(res.status, 201, await res.clone().text());
  assert.deepEqual((await res.json()).value, stored);
  assert.deepEqual((await getJson(svc, `${CONFIG}/n?environment=development`)).value, stored);
  const put = await send(
    svc.app,
    "PUT",
    `${CONFIG}/n`,
    '{"value": [1.0, 1e3, -0, 9007199254740991], "environment": "development"}',
  );
  assert.equal(put.status, 200, await put.clone().text());
  assert.deepEqual(
    (await getJson(svc, `${CONFIG}/n?environment=development`)).value,
    [1, 1000, 0, 9007199254740991],
  );
});

Deno.test("a write body that is not JSON is the same 400 whatever numbers it holds", async () => {
  await using svc = await startService(embeddedSettings());
  const plain = await assertProblem(
    await send(svc.app, "POST", CONFIG, '{"key": "k", "value": '),
    400,
  );
  const digits = await assertProblem(
    await send(svc.app, "POST", CONFIG, '{"key": "k", "value": 12345678901234567890'),
    400,
  );
  const put = await assertProblem(
    await send(svc.app, "PUT", `${CONFIG}/k`, '{"value": 1e400,'),
    400,
  );
  for (const p of [plain, digits, put]) {
    assert.equal(p.detail, "Malformed JSON in request body");
    assert.equal(p.errors, undefined);
  }
});

Deno.test("GET /api/v1/config/:key stays one handler: the number check is on writes only", async () => {
  await using svc = await startService(embeddedSettings());
  assert.equal(svc.app.router.match("GET", "/api/v1/config/k")[0].length, 1);
});

// --- 4. Errors --------------------------------------------------------------------------------

Deno.test("invalid writes are 400 problems naming the field", async () => {
  await using svc = await startService(embeddedSettings());
  const post = (body: unknown) => send(svc.app, "POST", CONFIG, body);
  await assertProblem(await post({ key: "k", value: 1 }), 400, "environment");
  await assertProblem(await post({ key: "k", value: 1, environment: "qa" }), 400, "environment");
  await assertProblem(
    await post({ key: "bad key!", value: 1, environment: "development" }),
    400,
    "key",
  );
  await assertProblem(
    await post({ key: "k".repeat(257), value: 1, environment: "development" }),
    400,
    "key",
  );
  await assertProblem(await post({ key: "k", environment: "development" }), 400, "value");
  await assertProblem(
    await post({ key: "k", value: 1, environment: "development", service_name: "a b" }),
    400,
    "service_name",
  );
  const malformed = await send(svc.app, "POST", CONFIG, '{"key": "k", "value": ');
  await assertProblem(malformed, 400);
  await assertProblem(
    await send(svc.app, "PUT", `${CONFIG}/k`, { environment: "development" }),
    400,
    "value",
  );
  await assertProblem(await send(svc.app, "PUT", `${CONFIG}/k`, { value: 1 }), 400, "environment");
  await assertProblem(
    await send(svc.app, "POST", `${CONFIG}/bulk`, { keys: ["a"], environment: "nope" }),
    400,
    "environment",
  );
  // Nothing was written.
  assert.deepEqual(await getJson(svc, CONFIG), []);
});

Deno.test("invalid reads are 400 problems naming the field", async () => {
  await using svc = await startService(embeddedSettings());
  await assertProblem(await send(svc.app, "GET", `${CONFIG}/k`), 400, "environment");
  await assertProblem(await send(svc.app, "GET", `${CONFIG}/k?environment=qa`), 400, "environment");
  await assertProblem(
    await send(svc.app, "GET", `${CONFIG}/bad%20key?environment=development`),
    400,
    "key",
  );
  await assertProblem(await send(svc.app, "DELETE", `${CONFIG}/k`), 400, "environment");
  await assertProblem(await send(svc.app, "GET", `${CONFIG}?environment=qa`), 400, "environment");
  await assertProblem(await send(svc.app, "GET", `${CONFIG}?limit=0`), 400, "limit");
  await assertProblem(await send(svc.app, "GET", `${CONFIG}?limit=abc`), 400, "limit");
  await assertProblem(await send(svc.app, "GET", `${CONFIG}?offset=-1`), 400, "offset");
  await assertProblem(
    await send(svc.app, "GET", `${CONFIG}/k/history?environment=development&limit=0`),
    400,
    "limit",
  );
  await assertProblem(
    await send(svc.app, "GET", `${CONFIG}/k/history?environment=development&limit=abc`),
    400,
    "limit",
  );
  await assertProblem(await send(svc.app, "GET", `${CONFIG}?keys[]=bad%20key`), 400, "keys");
});

Deno.test("POST of an existing entry is 409; PUT, DELETE and GET of a missing one 404", async () => {
  await using svc = await startService(embeddedSettings());
  await create(svc, SEED);
  await assertProblem(await send(svc.app, "POST", CONFIG, SEED), 409);
  // The same key in another scope is another entry.
  await create(svc, { ...SEED, service_name: null });
  await create(svc, { ...SEED, environment: "production" });

  await assertProblem(
    await send(svc.app, "PUT", `${CONFIG}/missing`, { value: 1, environment: "development" }),
    404,
  );
  await assertProblem(
    await send(svc.app, "DELETE", `${CONFIG}/missing?environment=development`),
    404,
  );
  const got = await send(svc.app, "GET", `${CONFIG}/missing?${SEED_Q}`);
  const p = await assertProblem(got, 404);
  assert.match(p.detail, /missing/);
  // The seed's entry is untouched by the failed POST.
  assert.equal((await getJson(svc, `${CONFIG}/model_path?${SEED_Q}`)).version, 1);
});

Deno.test("a value larger than CONFIG_MAX_VALUE_BYTES is a 413 problem", async () => {
  await using svc = await startService(embeddedSettings({ CONFIG_MAX_VALUE_BYTES: "100" }));
  const small = "x".repeat(90);
  await create(svc, { key: "k", value: small, environment: "development" });
  const big = "x".repeat(200);
  const p = await assertProblem(
    await send(svc.app, "POST", CONFIG, { key: "k2", value: big, environment: "development" }),
    413,
  );
  assert.match(p.detail, /CONFIG_MAX_VALUE_BYTES/);
  await assertProblem(
    await send(svc.app, "PUT", `${CONFIG}/k`, { value: { big }, environment: "development" }),
    413,
  );
  assert.equal((await getJson(svc, `${CONFIG}/k?environment=development`)).value, small);
  await assertProblem(await send(svc.app, "GET", `${CONFIG}/k2?environment=development`), 404);
});

Deno.test("a too-large value's 413 problem names the field value", async () => {
  await using svc = await startService(embeddedSettings({ CONFIG_MAX_VALUE_BYTES: "100" }));
  const res = await send(svc.app, "POST", CONFIG, {
    key: "k",
    value: "x".repeat(200),
    environment: "development",
  });
  await assertProblem(res, 413, "value");
});

Deno.test("a malformed If-Match or X-User header is a 400 problem naming the header", async () => {
  await using svc = await startService(embeddedSettings());
  await create(svc, { key: "k", value: 1, environment: "development" });
  for (const bad of ["garbage", "s1", 'W/"g1"', '"x1"']) {
    await assertProblem(
      await send(svc.app, "PUT", `${CONFIG}/k`, { value: 2, environment: "development" }, {
        "if-match": bad,
      }),
      400,
      "If-Match",
    );
  }
  await assertProblem(
    await send(svc.app, "DELETE", `${CONFIG}/k?environment=development`, undefined, {
      "if-match": "nope",
    }),
    400,
    "If-Match",
  );
  await assertProblem(
    await send(svc.app, "POST", CONFIG, { key: "k2", value: 1, environment: "development" }, {
      "x-user": "u".repeat(129),
    }),
    400,
    "X-User",
  );
  await assertProblem(
    await send(svc.app, "PUT", `${CONFIG}/k`, { value: 2, environment: "development" }, {
      "x-user": "naïve",
    }),
    400,
    "X-User",
  );
  assert.equal((await getJson(svc, `${CONFIG}/k?environment=development`)).version, 1);
});

// --- 5. ETag and conditional requests ---------------------------------------------------------

Deno.test("a repeated GET is answered on the HTTP thread exactly as the route answers it", async () => {
  await using svc = await startService(embeddedSettings());
  await create(svc, SEED);
  const url = `${CONFIG}/model_path?${SEED_Q}`;
  const first = await send(svc.app, "GET", url, undefined, { "x-request-id": "first-1" });
  const firstBody = await first.text();
  // An answer is kept on this thread only when no change notice crossed its read (the
  // create's notice may arrive during the first one): read until one comes from there.
  await waitFor(
    async () => {
      const before = svc.actors.config.nearHits;
      await (await send(svc.app, "GET", url)).body?.cancel();
      return svc.actors.config.nearHits > before;
    },
    5_000,
    "a GET answered from the near cache",
  );
  const hits = svc.actors.config.nearHits;
  // The URL was validated once and the answer is on this thread: the fetch wrapper answers.
  const again = await send(svc.app, "GET", url, undefined, { "x-request-id": "again-1" });
  assert.equal(svc.actors.config.nearHits, hits + 1, "answered from the near cache");
  assert.equal(again.status, 200);
  assert.equal(await again.text(), firstBody);
  assert.equal(again.headers.get("etag"), first.headers.get("etag"));
  assert.equal(again.headers.get("content-type"), "application/json");
  assert.equal(again.headers.get("x-request-id"), "again-1");
  const made = await send(svc.app, "GET", url);
  assert.match(made.headers.get("x-request-id") ?? "", /^[0-9a-f]{8}-[0-9a-z]+$/);
  await made.body?.cancel();
  const notModified = await send(svc.app, "GET", url, undefined, {
    "if-none-match": first.headers.get("etag")!,
    "x-request-id": "nm-1",
  });
  assert.equal(notModified.status, 304);
  assert.equal(notModified.headers.get("x-request-id"), "nm-1");
  assert.equal(notModified.headers.get("etag"), first.headers.get("etag"));
  await notModified.body?.cancel();

  // A write is read back at once, and ?reveal=true never takes the fast path (403 here).
  await update(svc, "model_path", {
    value: "/models/asr-v3",
    environment: "development",
    service_name: "asr-service",
  });
  assert.equal((await getJson(svc, url)).value, "/models/asr-v3");
  assert.equal((await getJson(svc, url)).version, 2);
  const reveal = await send(svc.app, "GET", `${url}&reveal=true`);
  assert.equal(reveal.status, 403);
  await reveal.body?.cancel();
});

Deno.test("GET honours If-None-Match: 304 without a body until the entry changes", async () => {
  await using svc = await startService(embeddedSettings());
  await create(svc, SEED);
  const first = await send(svc.app, "GET", `${CONFIG}/model_path?${SEED_Q}`);
  const etag = first.headers.get("etag");
  assert.equal(etag, '"s1"');
  await first.body?.cancel();

  const same = await send(svc.app, "GET", `${CONFIG}/model_path?${SEED_Q}`, undefined, {
    "if-none-match": etag!,
  });
  assert.equal(same.status, 304);
  assert.equal(same.headers.get("etag"), etag);
  assert.equal(await same.text(), "");
  const listed = await send(svc.app, "GET", `${CONFIG}/model_path?${SEED_Q}`, undefined, {
    "if-none-match": `"s9", ${etag}`,
  });
  assert.equal(listed.status, 304);
  await listed.body?.cancel();

  await update(svc, "model_path", {
    value: "/models/asr-v2",
    environment: "development",
    service_name: "asr-service",
  });
  const changed = await send(svc.app, "GET", `${CONFIG}/model_path?${SEED_Q}`, undefined, {
    "if-none-match": etag!,
  });
  assert.equal(changed.status, 200);
  assert.equal(changed.headers.get("etag"), '"s2"');
  assert.equal((await changed.json()).value, "/models/asr-v2");
});

Deno.test("PUT with If-Match is a compare-and-set: the current ETag wins, a stale one is 412", async () => {
  await using svc = await startService(embeddedSettings());
  await create(svc, SEED);
  const body = (value: string) => ({
    value,
    environment: "development",
    service_name: "asr-service",
  });
  const ok = await send(svc.app, "PUT", `${CONFIG}/model_path`, body("v2"), { "if-match": '"s1"' });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get("etag"), '"s2"');
  assert.equal((await ok.json()).version, 2);

  const stale = await send(svc.app, "PUT", `${CONFIG}/model_path`, body("v3"), {
    "if-match": '"s1"',
  });
  await assertProblem(stale, 412);
  const now = await getJson(svc, `${CONFIG}/model_path?${SEED_Q}`);
  assert.equal(now.value, "v2");
  assert.equal(now.version, 2);

  // `*` matches any current version.
  const any = await send(svc.app, "PUT", `${CONFIG}/model_path`, body("v3"), { "if-match": "*" });
  assert.equal(any.status, 200);
  await any.body?.cancel();
});

Deno.test("DELETE with a stale If-Match is 412 and the entry stays; the current one deletes", async () => {
  await using svc = await startService(embeddedSettings());
  await create(svc, SEED);
  await update(svc, "model_path", {
    value: "v2",
    environment: "development",
    service_name: "asr-service",
  });
  await assertProblem(
    await send(svc.app, "DELETE", `${CONFIG}/model_path?${SEED_Q}`, undefined, {
      "if-match": '"s1"',
    }),
    412,
  );
  assert.equal((await getJson(svc, `${CONFIG}/model_path?${SEED_Q}`)).value, "v2");
  const del = await send(svc.app, "DELETE", `${CONFIG}/model_path?${SEED_Q}`, undefined, {
    "if-match": '"s2"',
  });
  assert.equal(del.status, 200);
  assert.equal((await del.json()).deleted, true);
});

Deno.test('If-None-Match uses the weak comparison: W/"s1" is a 304 too', async () => {
  await using svc = await startService(embeddedSettings());
  await create(svc, SEED);
  // RFC 9110 §13.1.2: If-None-Match compares weakly; proxies that compress turn strong
  // ETags weak, and clients send them back that way.
  const res = await send(svc.app, "GET", `${CONFIG}/model_path?${SEED_Q}`, undefined, {
    "if-none-match": 'W/"s1"',
  });
  await res.body?.cancel();
  assert.equal(res.status, 304);
});

Deno.test("If-Match with the global entry's ETag does not match the service entry", async () => {
  await using svc = await startService(embeddedSettings());
  const dev = { environment: "development" };
  await create(svc, { key: "timeout", value: "30", ...dev });
  // A client reads the value its service sees: the global entry answers, ETag "g1".
  const read = await send(svc.app, "GET", `${CONFIG}/timeout?${SEED_Q}`);
  const etag = read.headers.get("etag")!;
  assert.equal(etag, '"g1"');
  await read.body?.cancel();
  // Meanwhile someone creates the service entry (also version 1, ETag "s1").
  await create(svc, { key: "timeout", value: "20", ...dev, service_name: "asr-service" });
  // A compare-and-set with the ETag of another representation must fail.
  const put = await send(svc.app, "PUT", `${CONFIG}/timeout`, {
    value: "25",
    ...dev,
    service_name: "asr-service",
  }, { "if-match": etag });
  const del = await send(svc.app, "DELETE", `${CONFIG}/timeout?${SEED_Q}`, undefined, {
    "if-match": etag,
  });
  const got = await getJson(svc, `${CONFIG}/timeout?${SEED_Q}`);
  await assertProblem(put, 412);
  await assertProblem(del, 412);
  assert.equal(got.value, "20");
});

// --- 6. History -------------------------------------------------------------------------------

Deno.test("history survives delete, pages with limit/offset, and versions continue after re-create", async () => {
  await using svc = await startService(embeddedSettings());
  const env = { environment: "development" };
  await create(svc, { key: "k", value: "one", ...env });
  await update(svc, "k", { value: "two", ...env });
  const del = await send(svc.app, "DELETE", `${CONFIG}/k?environment=development`);
  assert.equal(del.status, 200);
  await del.body?.cancel();

  const afterDelete = await getJson(svc, `${CONFIG}/k/history?environment=development`);
  assert.deepEqual(
    afterDelete.map((h: Record<string, unknown>) => [h.version, h.change_type]),
    [[3, "deleted"], [2, "updated"], [1, "created"]],
  );

  const { json: again } = await create(svc, { key: "k", value: "three", ...env });
  assert.equal(again.version, 4, "versions never repeat for an id");
  const res = await send(svc.app, "GET", `${CONFIG}/k?environment=development`);
  assert.equal(res.headers.get("etag"), '"g4"');
  await res.body?.cancel();

  const all = await getJson(svc, `${CONFIG}/k/history?environment=development`);
  assert.deepEqual(all.map((h: { version: number }) => h.version), [4, 3, 2, 1]);
  assert.deepEqual(all.map((h: { value: unknown }) => h.value).filter((v: unknown) => v !== null), [
    "three",
    "two",
    "one",
  ]);
  const page = await getJson(svc, `${CONFIG}/k/history?environment=development&limit=2&offset=1`);
  assert.deepEqual(page.map((h: { version: number }) => h.version), [3, 2]);
  const last = await getJson(svc, `${CONFIG}/k/history?environment=development&limit=2&offset=3`);
  assert.deepEqual(last.map((h: { version: number }) => h.version), [1]);
  assert.deepEqual(
    await getJson(svc, `${CONFIG}/k/history?environment=development&offset=10`),
    [],
  );
  // Another scope's history is separate.
  assert.deepEqual(await getJson(svc, `${CONFIG}/k/history?${SEED_Q}`), []);
});

// --- 7. Rollback ------------------------------------------------------------------------------

Deno.test("POST /api/v1/config/:key/rollback writes a new version with the old value", async () => {
  await using svc = await startService(embeddedSettings());
  await create(svc, { ...SEED, value: { path: "/models/asr", beams: 4 } });
  await update(svc, "model_path", {
    value: "/models/asr-v2",
    environment: "development",
    service_name: "asr-service",
    description: "v2",
  });
  const res = await send(svc.app, "POST", `${CONFIG}/model_path/rollback`, {
    environment: "development",
    service_name: "asr-service",
    version: 1,
  }, { "x-user": "ops" });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("etag"), '"s3"');
  const rolled = await res.json();
  assert.deepEqual(rolled.value, { path: "/models/asr", beams: 4 });
  assert.equal(rolled.version, 3);
  assert.equal(rolled.updated_by, "ops");
  assert.equal(rolled.description, "Path to ASR model files");

  const got = await getJson(svc, `${CONFIG}/model_path?${SEED_Q}`);
  assert.deepEqual(got.value, { path: "/models/asr", beams: 4 });
  assert.equal(got.version, 3);
  const history = await getJson(svc, `${CONFIG}/model_path/history?${SEED_Q}`);
  assert.deepEqual(
    history.map((h: Record<string, unknown>) => [h.version, h.change_type, h.updated_by]),
    [[3, "rolled_back", "ops"], [2, "updated", "anonymous"], [1, "created", "anonymous"]],
  );
  assert.deepEqual(history[0].value, { path: "/models/asr", beams: 4 });

  await assertProblem(
    await send(svc.app, "POST", `${CONFIG}/model_path/rollback`, {
      environment: "development",
      service_name: "asr-service",
      version: 99,
    }),
    404,
  );
  await assertProblem(
    await send(svc.app, "POST", `${CONFIG}/model_path/rollback`, {
      environment: "development",
      service_name: "asr-service",
      version: 0,
    }),
    400,
    "version",
  );
  assert.equal((await getJson(svc, `${CONFIG}/model_path?${SEED_Q}`)).version, 3);
});

// --- 8. updated_by ----------------------------------------------------------------------------

Deno.test("updated_by comes from X-User, else anonymous", async () => {
  await using svc = await startService(embeddedSettings());
  const { json: a } = await create(svc, { key: "k", value: 1, environment: "development" }, {
    "x-user": "alice@example.com",
  });
  assert.equal(a.updated_by, "alice@example.com");
  const b = await update(svc, "k", { value: 2, environment: "development" });
  assert.equal(b.updated_by, "anonymous");
  const c = await update(svc, "k", { value: 3, environment: "development" }, { "x-user": "" });
  assert.equal(c.updated_by, "anonymous");
  const d = await send(svc.app, "DELETE", `${CONFIG}/k?environment=development`, undefined, {
    "x-user": "bob",
  });
  assert.equal((await d.json()).updated_by, "bob");
  const history = await getJson(svc, `${CONFIG}/k/history?environment=development`);
  assert.deepEqual(history.map((h: { updated_by: string }) => h.updated_by), [
    "bob",
    "anonymous",
    "anonymous",
    "alice@example.com",
  ]);
});

// --- 9. List ----------------------------------------------------------------------------------

Deno.test("GET /api/v1/config filters by environment, service_name and keys, and pages", async () => {
  await using svc = await startService(embeddedSettings());
  const rows: [string, string, string | null][] = [
    ["a", "development", null],
    ["b", "development", null],
    ["a", "development", "s1"],
    ["c", "development", "s1"],
    ["a", "development", "s2"],
    ["a", "staging", null],
    ["b", "production", "s1"],
  ];
  for (const [key, environment, service_name] of rows) {
    await create(svc, {
      key,
      value: `${environment}/${service_name}/${key}`,
      environment,
      service_name,
    });
  }
  const ids = (list: { key: string; environment: string; service_name: string | null }[]) =>
    list.map((e) => `${e.environment}/${e.service_name ?? "-"}/${e.key}`).sort();

  assert.equal((await getJson(svc, CONFIG)).length, rows.length);
  assert.deepEqual(ids(await getJson(svc, `${CONFIG}?environment=development`)), [
    "development/-/a",
    "development/-/b",
    "development/s1/a",
    "development/s1/c",
    "development/s2/a",
  ]);
  assert.deepEqual(ids(await getJson(svc, `${CONFIG}?service_name=s1`)), [
    "development/s1/a",
    "development/s1/c",
    "production/s1/b",
  ]);
  assert.deepEqual(
    ids(await getJson(svc, `${CONFIG}?environment=development&service_name=s1`)),
    ["development/s1/a", "development/s1/c"],
  );
  assert.deepEqual(
    ids(await getJson(svc, `${CONFIG}?environment=development&keys[]=b&keys[]=c`)),
    ["development/-/b", "development/s1/c"],
  );
  assert.deepEqual(
    ids(await getJson(svc, `${CONFIG}?environment=development&keys%5B%5D=b&keys%5B%5D=c`)),
    ["development/-/b", "development/s1/c"],
  );
  assert.deepEqual(
    ids(await getJson(svc, `${CONFIG}?environment=development&keys=b&keys=c`)),
    ["development/-/b", "development/s1/c"],
  );
  assert.deepEqual(ids(await getJson(svc, `${CONFIG}?keys=b`)), [
    "development/-/b",
    "production/s1/b",
  ]);
  assert.deepEqual(await getJson(svc, `${CONFIG}?environment=development&keys=zzz`), []);

  const all = await getJson(svc, `${CONFIG}?environment=development`);
  const p1 = await getJson(svc, `${CONFIG}?environment=development&limit=2`);
  const p2 = await getJson(svc, `${CONFIG}?environment=development&limit=2&offset=2`);
  const p3 = await getJson(svc, `${CONFIG}?environment=development&limit=2&offset=4`);
  assert.deepEqual([p1.length, p2.length, p3.length], [2, 2, 1]);
  assert.deepEqual([...p1, ...p2, ...p3], all, "pages are consecutive and disjoint");
  assert.deepEqual(await getJson(svc, `${CONFIG}?environment=development&offset=5`), []);
});

Deno.test("GET /api/v1/config sends X-Config-Index, and it increases after a write", async () => {
  await using svc = await startService(embeddedSettings());
  const i0 = await listIndex(svc);
  await create(svc, { key: "k", value: 1, environment: "development" });
  // The write was acknowledged: a list made now must not answer an index from before it,
  // or a blocking query with that index returns at once (Consul clients loop on it).
  const i1 = await listIndex(svc);
  assert.ok(i1 > i0, `index moved from ${i0} to ${i1} after a create`);
  await update(svc, "k", { value: 2, environment: "development" });
  const i2 = await listIndex(svc);
  assert.ok(i2 > i1, `index moved from ${i1} to ${i2} after an update`);
});

// --- 10. Long polling -------------------------------------------------------------------------

Deno.test("a blocking list with index returns soon after a write in its scope", async () => {
  await using svc = await startService(embeddedSettings());
  await create(svc, { key: "before", value: 1, environment: "development" });
  const index = await settledIndex(svc, 1);

  let answeredAt = 0;
  const pending = send(svc.app, "GET", `${CONFIG}?environment=development&index=${index}&wait=5s`)
    .then((res) => {
      answeredAt = Date.now();
      return res;
    });
  await sleep(200);
  assert.equal(answeredAt, 0, "the blocking list waits while nothing changes");
  // A write in another environment does not wake it.
  await create(svc, { key: "elsewhere", value: 0, environment: "staging" });
  await sleep(100);
  assert.equal(answeredAt, 0, "a write in another environment does not wake it");

  const wroteAt = Date.now();
  await create(svc, { key: "after", value: 2, environment: "development" });
  const res = await pending;
  assert.equal(res.status, 200);
  const list = await res.json();
  const ms = answeredAt - wroteAt;
  assert.ok(ms < 1_000, `answered ${ms} ms after the write, well under wait=5s`);
  assert.deepEqual(list.map((e: { key: string }) => e.key).sort(), ["after", "before"]);
  assert.ok(Number(res.headers.get("x-config-index")) > index, "the index moved on");
});

Deno.test("a blocking list with nothing changing returns after wait; index needs environment", async () => {
  await using svc = await startService(embeddedSettings());
  await create(svc, { key: "k", value: 1, environment: "development" });
  const index = await settledIndex(svc, 1);

  const t0 = Date.now();
  const res = await send(
    svc.app,
    "GET",
    `${CONFIG}?environment=development&index=${index}&wait=300ms`,
  );
  const elapsed = Date.now() - t0;
  assert.equal(res.status, 200);
  assert.equal((await res.json()).length, 1);
  assert.ok(elapsed >= 280, `waited about 300 ms (${elapsed} ms)`);
  assert.ok(elapsed < 1_500, `did not wait much longer than 300 ms (${elapsed} ms)`);
  assert.equal(Number(res.headers.get("x-config-index")), index);

  // An index older than the latest change answers at once.
  const t1 = Date.now();
  const old = await send(svc.app, "GET", `${CONFIG}?environment=development&index=0&wait=5s`);
  assert.equal(old.status, 200);
  await old.body?.cancel();
  assert.ok(Date.now() - t1 < 1_000, "a stale index does not block");

  await assertProblem(await send(svc.app, "GET", `${CONFIG}?index=${index}`), 400, "environment");
  await assertProblem(
    await send(svc.app, "GET", `${CONFIG}?environment=development&index=0&wait=forever`),
    400,
    "wait",
  );
});

// --- 11. Secrets ------------------------------------------------------------------------------

Deno.test("secret values are masked in every response and ?reveal=true is forbidden", async () => {
  await using svc = await startService(embeddedSettings());
  const watcher = await watch(svc, "environment=development");
  try {
    const { json: created } = await create(svc, {
      key: "db_password",
      value: "hunter2",
      environment: "development",
      service_name: "asr-service",
      secret: true,
    });
    assert.equal(created.value, MASK);
    assert.equal(created.secret, true);

    const ev = await watcher.next();
    assert.equal(ev.event, "created");
    assert.equal(ev.data.key, "db_password");
    assert.equal(ev.data.value, MASK);

    // A PUT that does not say `secret` keeps the entry secret.
    const put = await update(svc, "db_password", {
      value: "correct horse",
      environment: "development",
      service_name: "asr-service",
    });
    assert.equal(put.value, MASK);
    assert.equal(put.secret, true);
    const ev2 = await watcher.next();
    assert.equal(ev2.event, "updated");
    assert.equal(ev2.data.value, MASK);

    const got = await getJson(svc, `${CONFIG}/db_password?${SEED_Q}`);
    assert.equal(got.value, MASK);
    assert.equal(got.secret, true);
    const list = await getJson(svc, `${CONFIG}?environment=development`);
    assert.equal(list[0].value, MASK);
    const history = await getJson(svc, `${CONFIG}/db_password/history?${SEED_Q}`);
    assert.deepEqual(history.map((h: { value: unknown }) => h.value), [MASK, MASK]);
    const bulk = await send(svc.app, "POST", `${CONFIG}/bulk`, {
      keys: ["db_password"],
      environment: "development",
      service_name: "asr-service",
    });
    assert.deepEqual(await bulk.json(), { db_password: MASK });

    const rolled = await send(svc.app, "POST", `${CONFIG}/db_password/rollback`, {
      environment: "development",
      service_name: "asr-service",
      version: 1,
    });
    assert.equal(rolled.status, 200);
    assert.equal((await rolled.json()).value, MASK);
    const ev3 = await watcher.next();
    assert.equal(ev3.event, "rolled_back");
    assert.equal(ev3.data.value, MASK);

    const all = JSON.stringify([created, put, got, list, history, ev, ev2, ev3]);
    assert.doesNotMatch(all, /hunter2|correct horse/);

    const reveal = await send(svc.app, "GET", `${CONFIG}/db_password?${SEED_Q}&reveal=true`);
    await assertProblem(reveal, 403);
  } finally {
    await watcher.cancel();
  }
});

Deno.test("secret values are masked when a watcher replays with Last-Event-ID", async () => {
  await using svc = await startService(embeddedSettings());
  await create(svc, { key: "plain", value: "visible", environment: "development" });
  await create(svc, { key: "token", value: "s3cr3t", environment: "development", secret: true });
  const replay = await watch(svc, "environment=development", { "last-event-id": "0" });
  try {
    const a = await replay.next();
    const b = await replay.next();
    assert.deepEqual([a.data.key, a.data.value], ["plain", "visible"]);
    assert.deepEqual([b.data.key, b.data.value], ["token", MASK]);
  } finally {
    await replay.cancel();
  }
});

// --- 12. Keys with a slash --------------------------------------------------------------------

Deno.test("keys with / work when the path carries them as %2F", async () => {
  await using svc = await startService(embeddedSettings());
  await create(svc, { key: "db/host", value: "pg-1", environment: "development" });
  const got = await getJson(svc, `${CONFIG}/db%2Fhost?environment=development`);
  assert.equal(got.key, "db/host");
  assert.equal(got.value, "pg-1");
  const put = await send(svc.app, "PUT", `${CONFIG}/db%2Fhost`, {
    value: "pg-2",
    environment: "development",
  });
  assert.equal(put.status, 200);
  assert.equal((await put.json()).value, "pg-2");
  const history = await getJson(svc, `${CONFIG}/db%2Fhost/history?environment=development`);
  assert.deepEqual(history.map((h: { value: unknown }) => h.value), ["pg-2", "pg-1"]);
  const rb = await send(svc.app, "POST", `${CONFIG}/db%2Fhost/rollback`, {
    environment: "development",
    version: 1,
  });
  assert.equal(rb.status, 200);
  assert.equal((await rb.json()).value, "pg-1");
  const bulk = await send(svc.app, "POST", `${CONFIG}/bulk`, {
    keys: ["db/host"],
    environment: "development",
  });
  assert.deepEqual(await bulk.json(), { "db/host": "pg-1" });
  assert.deepEqual(
    (await getJson(svc, `${CONFIG}?keys=db%2Fhost`)).map((e: { key: string }) => e.key),
    ["db/host"],
  );
  const del = await send(svc.app, "DELETE", `${CONFIG}/db%2Fhost?environment=development`);
  assert.equal(del.status, 200);
  assert.equal((await del.json()).key, "db/host");
  await assertProblem(
    await send(svc.app, "GET", `${CONFIG}/db%2Fhost?environment=development`),
    404,
  );
});

Deno.test("a key POST accepts is one GET /api/v1/config/{key} can read back", async () => {
  await using svc = await startService(embeddedSettings());
  const problems: string[] = [];
  // All valid per the key pattern; each must either be refused at creation (400 naming key)
  // or be readable through its percent-encoded path.
  for (const key of ["status", "watch", ".", "..", "bulk", "a..b", ".hidden"]) {
    const post = await send(svc.app, "POST", CONFIG, {
      key,
      value: key,
      environment: "development",
    });
    if (post.status === 400) {
      await assertProblem(post, 400, "key");
      continue;
    }
    assert.equal(post.status, 201, `POST ${key}`);
    await post.body?.cancel();
    const res = await send(
      svc.app,
      "GET",
      `${CONFIG}/${encodeURIComponent(key)}?environment=development`,
    );
    const type = res.headers.get("content-type") ?? "";
    if (res.status !== 200 || !type.startsWith("application/json")) {
      problems.push(`${JSON.stringify(key)}: GET answered ${res.status} ${type}`);
      await res.body?.cancel();
      continue;
    }
    const body = await res.json();
    if (body.key !== key) {
      problems.push(`${JSON.stringify(key)}: GET answered ${JSON.stringify(body).slice(0, 80)}`);
    }
  }
  assert.deepEqual(problems, [], "created keys that GET cannot read");
});

// --- 13. SSE watch ----------------------------------------------------------------------------

Deno.test("GET /api/v1/config/watch streams created, updated, rolled_back and deleted events", async () => {
  await using svc = await startService(embeddedSettings());
  const watcher = await watch(svc, "environment=development");
  try {
    const env = { environment: "development", service_name: "asr-service" };
    await create(svc, { key: "k", value: { n: 1 }, ...env });
    const created = await watcher.next(1_000);
    assert.match(created.id, /^\d+$/);
    assert.equal(created.event, "created");
    assert.equal(created.data.key, "k");
    assert.deepEqual(created.data.value, { n: 1 });
    assert.equal(created.data.version, 1);
    assert.equal(created.data.environment, "development");
    assert.equal(created.data.service_name, "asr-service");

    await update(svc, "k", { value: 2, ...env });
    const updated = await watcher.next(1_000);
    assert.equal(updated.event, "updated");
    assert.equal(updated.data.value, 2);
    assert.equal(updated.data.version, 2);
    assert.ok(Number(updated.id) > Number(created.id));

    const rb = await send(svc.app, "POST", `${CONFIG}/k/rollback`, { ...env, version: 1 });
    assert.equal(rb.status, 200);
    await rb.body?.cancel();
    const rolled = await watcher.next(1_000);
    assert.equal(rolled.event, "rolled_back");
    assert.deepEqual(rolled.data.value, { n: 1 });
    assert.equal(rolled.data.version, 3);

    const del = await send(svc.app, "DELETE", `${CONFIG}/k?${SEED_Q}`);
    assert.equal(del.status, 200);
    await del.body?.cancel();
    const deleted = await watcher.next(1_000);
    assert.equal(deleted.event, "deleted");
    assert.equal(deleted.data.key, "k");
    assert.equal(deleted.data.version, 4);
    assert.ok(Number(deleted.id) > Number(rolled.id));

    // Another environment is not this watcher's business: the next event is development's.
    await create(svc, { key: "other", value: 1, environment: "staging" });
    await create(svc, { key: "mine", value: 1, environment: "development" });
    const next = await watcher.next(1_000);
    assert.equal(next.data.key, "mine");
    assert.equal(next.data.service_name, null);
  } finally {
    await watcher.cancel();
  }
});

Deno.test("a watcher with service_name sees its service and the global scope, not other services", async () => {
  await using svc = await startService(embeddedSettings());
  const watcher = await watch(svc, "environment=development&service_name=a");
  try {
    const dev = { environment: "development" };
    await create(svc, { key: "k_b", value: "b", ...dev, service_name: "b" });
    await create(svc, { key: "k_global", value: "g", ...dev });
    await create(svc, { key: "k_b2", value: "b", ...dev, service_name: "b" });
    await create(svc, { key: "k_a", value: "a", ...dev, service_name: "a" });
    await create(svc, { key: "k_b3", value: "b", ...dev, service_name: "b" });
    await update(svc, "k_global", { value: "g2", ...dev });
    const seen = [await watcher.next(), await watcher.next(), await watcher.next()];
    assert.deepEqual(
      seen.map((e) => [e.event, e.data.key, e.data.service_name]),
      [["created", "k_global", null], ["created", "k_a", "a"], ["updated", "k_global", null]],
    );
    const ids = seen.map((e) => Number(e.id));
    assert.deepEqual(ids, [...ids].sort((x, y) => x - y));
  } finally {
    await watcher.cancel();
  }
});

Deno.test("a watcher connected after a write is acknowledged does not receive that write", async () => {
  await using svc = await startService(embeddedSettings());
  const dev = { environment: "development" };
  await create(svc, { key: "old", value: 1, ...dev });
  // The 201 was received: "old" happened before this watch began.
  const watcher = await watch(svc, "environment=development");
  try {
    await create(svc, { key: "new", value: 2, ...dev });
    const first = await watcher.next();
    assert.equal(first.data.key, "new", `first event is ${first.data.key} (seq ${first.id})`);
  } finally {
    await watcher.cancel();
  }
});

Deno.test("Last-Event-ID replays exactly the changes missed while disconnected, then live ones", async () => {
  await using svc = await startService(embeddedSettings());
  const dev = { environment: "development" };
  const first = await watch(svc, "environment=development");
  let lastId: string;
  try {
    await create(svc, { key: "k1", value: 1, ...dev });
    const e1 = await first.next();
    assert.equal(e1.data.key, "k1");
    lastId = e1.id;
  } finally {
    await first.cancel();
  }

  await create(svc, { key: "k2", value: 2, ...dev });
  await update(svc, "k1", { value: 10, ...dev });
  await create(svc, { key: "k3", value: 3, ...dev, service_name: "s" });
  // Reconnect at once: the hub may publish these changes while the replay reads them from
  // the store, and each must still be sent exactly once.
  const second = await watch(svc, "environment=development", { "last-event-id": lastId });
  try {
    const replayed = [await second.next(), await second.next(), await second.next()];
    assert.deepEqual(
      replayed.map((e) => [e.event, e.data.key, e.data.value]),
      [["created", "k2", 2], ["updated", "k1", 10], ["created", "k3", 3]],
    );
    const ids = replayed.map((e) => Number(e.id));
    assert.ok(ids[0] > Number(lastId));
    assert.ok(ids[0] < ids[1] && ids[1] < ids[2], `ids in order: ${ids}`);

    await create(svc, { key: "k4", value: 4, ...dev });
    const live = await second.next();
    assert.equal(live.event, "created");
    assert.equal(live.data.key, "k4");
    assert.ok(Number(live.id) > ids[2], "no duplicate, no gap before the live event");
  } finally {
    await second.cancel();
  }
});

Deno.test("a watch without environment or with a bad Last-Event-ID is a 400 problem", async () => {
  await using svc = await startService(embeddedSettings());
  await assertProblem(await send(svc.app, "GET", `${CONFIG}/watch`), 400, "environment");
  await assertProblem(
    await send(svc.app, "GET", `${CONFIG}/watch?environment=development`, undefined, {
      "last-event-id": "abc",
    }),
    400,
    "Last-Event-ID",
  );
});

// --- 14. OpenAPI ------------------------------------------------------------------------------

Deno.test("GET /openapi.json documents every configuration path", async () => {
  await using svc = await startService(embeddedSettings());
  const doc = await getJson(svc, "/openapi.json");
  const expected: Record<string, string[]> = {
    "/api/v1/config": ["get", "post"],
    "/api/v1/config/{key}": ["get", "put", "delete"],
    "/api/v1/config/{key}/history": ["get"],
    "/api/v1/config/{key}/rollback": ["post"],
    "/api/v1/config/bulk": ["post"],
    "/api/v1/config/watch": ["get"],
  };
  for (const [path, methods] of Object.entries(expected)) {
    assert.ok(doc.paths[path], `${path} documented`);
    for (const m of methods) assert.ok(doc.paths[path][m], `${m.toUpperCase()} ${path} documented`);
  }
});

Deno.test("GET /api/v1/config lists every scope, or with service_name= only the global one", async () => {
  await using svc = await startService(embeddedSettings());
  for (const service_name of [null, "orders"]) {
    const res = await send(svc.app, "POST", "/api/v1/config", {
      key: "k",
      value: 1,
      environment: "development",
      service_name,
    });
    assert.equal(res.status, 201);
    await res.body?.cancel();
  }
  const scopes = async (query: string) =>
    ((await (await svc.app.request(`/api/v1/config?environment=development${query}`)).json()) as {
      service_name: string | null;
    }[]).map((e) => e.service_name);
  assert.deepEqual(await scopes(""), [null, "orders"]);
  assert.deepEqual(await scopes("&service_name="), [null]);
  assert.deepEqual(await scopes("&service_name=orders"), ["orders"]);
});

Deno.test("a missing environment is a 400 saying it is required", async () => {
  await using svc = await startService(embeddedSettings());
  for (const path of ["/api/v1/config/k", "/api/v1/feature-flags", "/api/v1/config/k/history"]) {
    const res = await svc.app.request(path);
    assert.equal(res.status, 400, path);
    const p = await res.json();
    assert.deepEqual(
      p.errors.find((e: { field: string }) => e.field === "environment"),
      { field: "environment", in: "query", message: "is required" },
      path,
    );
  }
});

Deno.test("a write body that repeats a member name is a 400 naming it, not the last one stored", async () => {
  await using svc = await startService(embeddedSettings());
  const res = await svc.app.request("/api/v1/config", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: '{"key":"dup","environment":"development","value":{"a":12345,"a":1}}',
  });
  assert.equal(res.status, 400);
  assert.deepEqual((await res.json()).errors.map((e: { field: string }) => e.field), ["value.a"]);
  const get = await svc.app.request("/api/v1/config/dup?environment=development");
  assert.equal(get.status, 404);
  await get.body?.cancel();
});
