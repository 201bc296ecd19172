// The wrk client of `deno task loadtest --client wrk`: the Lua script, wrk's arguments and the
// parsing of its output are checked without wrk; one test runs wrk itself and skips without it.
import assert from "node:assert/strict";
import {
  luaBytes,
  parseWrkOutput,
  parseWrkVersion,
  runWrk,
  WRK_INSTALL,
  WRK_MARKER,
  wrkArgs,
  wrkScript,
  wrkVersion,
} from "../../bench/wrk.ts";
import { summarizeWrk, table } from "../../bench/loadtest.ts";

/** Reads back a Lua 5.1 string literal as luaBytes writes it (letters, digits and `\ddd`). */
function unLua(literal: string): Uint8Array {
  assert.ok(literal.startsWith('"') && literal.endsWith('"'), literal);
  const out: number[] = [];
  const s = literal.slice(1, -1);
  for (let i = 0; i < s.length;) {
    if (s[i] === "\\") {
      const digits = s.slice(i + 1, i + 4);
      assert.match(digits, /^\d{3}$/);
      out.push(Number(digits));
      i += 4;
    } else {
      assert.match(s[i]!, /[0-9A-Za-z]/);
      out.push(s.charCodeAt(i));
      i++;
    }
  }
  return Uint8Array.from(out);
}

Deno.test("luaBytes() writes every byte value so that it reads back exactly", () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const lit = luaBytes(all);
  assert.deepEqual(unLua(lit), all);
  // No raw quote, backslash-escape other than \ddd, newline or NUL can end or break the literal.
  assert.doesNotMatch(lit.slice(1, -1), /["\n\r\0]/);
  // An escape before a digit keeps three digits: byte 1 then "2" is \0012, never \12.
  assert.equal(luaBytes(new TextEncoder().encode("\u00012")), '"\\0012"');
});

Deno.test("wrkScript() embeds the method, path, headers and every body in order", () => {
  const bodies = [
    new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]),
    new Uint8Array([0, 34, 92, 255]),
    new Uint8Array(0),
  ];
  const script = wrkScript({
    method: "POST",
    path: "/v1/classify?alpha=0.25&beta=1",
    headers: { "content-type": "image/png" },
    bodies,
  });
  assert.match(script, new RegExp(`^local method = ${esc(luaBytes(enc("POST")))}$`, "m"));
  assert.match(
    script,
    new RegExp(`^local path = ${esc(luaBytes(enc("/v1/classify?alpha=0.25&beta=1")))}$`, "m"),
  );
  assert.ok(
    script.includes(
      `local headers = { [${luaBytes(enc("content-type"))}] = ${luaBytes(enc("image/png"))} }`,
    ),
  );
  const block = script.match(/^local bodies = \{\n([\s\S]*?)\n\}$/m);
  assert.ok(block, "a bodies table");
  const literals = block[1]!.split("\n").map((l) => l.trim().replace(/,$/, ""));
  assert.deepEqual(literals.map(unLua), bodies);
  for (
    const fn of ["setup(thread)", "init(args)", "request()", "done(summary, latency, requests)"]
  ) {
    assert.ok(script.includes(`function ${fn}`), fn);
  }
  // done() prints the marker line that parseWrkOutput reads, with every field it needs.
  const fmt = script.slice(script.indexOf("function done"));
  assert.ok(fmt.includes(WRK_MARKER + "{"));
  for (const k of ["requests", "duration_us", "connect", "read", "write", "status", "timeout"]) {
    assert.ok(fmt.includes(`"${k}":%.0f`), k);
  }
  for (const p of [50, 95, 99]) assert.ok(fmt.includes(`latency:percentile(${p})`), String(p));
  assert.throws(
    () => wrkScript({ method: "POST", path: "/", headers: {}, bodies: [] }),
    RangeError,
  );
});

Deno.test("wrkArgs() targets 127.0.0.1 with at most one thread per connection", () => {
  const args = wrkArgs({
    port: 8123,
    path: "/v1/classify?alpha=0.25&beta=1",
    connections: 32,
    threads: 1,
    durationS: 5,
    timeoutS: 10,
    scriptPath: "/tmp/x.lua",
  });
  assert.deepEqual(args, [
    "-t",
    "1",
    "-c",
    "32",
    "-d",
    "5s",
    "--timeout",
    "10s",
    "-s",
    "/tmp/x.lua",
    "http://127.0.0.1:8123/v1/classify?alpha=0.25&beta=1",
  ]);
  const few = wrkArgs({
    port: 1,
    path: "/",
    connections: 2,
    threads: 8,
    durationS: 1,
    timeoutS: 2,
    scriptPath: "s",
  });
  assert.equal(few[1], "2");
});

// What wrk 4.1.0 prints with the generated script: its own summary, then the done() line.
const SAMPLE = `Running 5s test @ http://127.0.0.1:40000/v1/classify?alpha=0.25&beta=1
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     7.51ms    4.02ms  41.20ms   80.00%
    Req/Sec     4.30k   300.00     4.80k    70.00%
  21500 requests in 5.00s, 4.10MB read
  Non-2xx or 3xx responses: 12
Requests/sec:   4300.00
Transfer/sec:    820.00KB
${WRK_MARKER}{"requests":21500,"duration_us":5000250,"bytes":4300000,"connect":0,"read":1,"write":0,"status":12,"timeout":2,"p50_us":6800,"p95_us":14250,"p99_us":19875,"max_us":41200}
`;

Deno.test("parseWrkOutput() reads the done() line among wrk's own output", () => {
  const r = parseWrkOutput(SAMPLE);
  assert.deepEqual(r, {
    answered: 21500,
    statusErrors: 12,
    socketErrors: 1,
    timeouts: 2,
    durationS: 5.00025,
    bytes: 4300000,
    p50: 6.8,
    p95: 14.25,
    p99: 19.875,
    max: 41.2,
  });
  // No answer at all: percentiles are missing, not 0 ms.
  const none = parseWrkOutput(
    `${WRK_MARKER}{"requests":0,"duration_us":1000000,"bytes":0,"connect":32,"read":0,"write":0,` +
      `"status":0,"timeout":0,"p50_us":0,"p95_us":0,"p99_us":0,"max_us":0}\n`,
  );
  assert.ok(Number.isNaN(none.p99));
  assert.equal(none.socketErrors, 32);
  assert.throws(
    () => parseWrkOutput("Running 5s test @ ...\nPANIC: unprotected error\n"),
    /no WRK/,
  );
  assert.throws(
    () => parseWrkOutput(`${WRK_MARKER}{"requests":1}\n`),
    /lacks a number "(status|duration_us)"/,
  );
});

Deno.test("parseWrkVersion() reads Debian's and upstream's version line", () => {
  assert.equal(
    parseWrkVersion("wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer\nUsage: ..."),
    "4.1.0",
  );
  assert.equal(parseWrkVersion("wrk 4.2.0 [kqueue] Copyright (C) 2012 Will Glozer"), "4.2.0");
  assert.equal(parseWrkVersion("command not found"), null);
});

Deno.test("summarizeWrk() turns a wrk run into a table row marked with its client", () => {
  const row = summarizeWrk("0.25", "1", 32, parseWrkOutput(SAMPLE), "4.1.0");
  assert.equal(row.client, "wrk 4.1.0");
  assert.equal(row.sent, 21500 + 1 + 2);
  assert.equal(row.ok, 21500 - 12);
  assert.equal(row.errors, 12 + 1 + 2);
  assert.equal(row.rps, (21500 - 12) / 5.00025);
  assert.equal(row.p99, 19.875);
  const md = table([row]);
  assert.match(md, /^\| client \| alpha \| beta \| concurrency \|/);
  assert.ok(md.includes("| wrk 4.1.0 | 0.25 | 1 | 32 | 21503 | 21488 | 15 | 4,297 | 6.8 |"), md);
});

Deno.test("deno task loadtest --client wrk without wrk exits 2 naming the apt command", async () => {
  const empty = await Deno.makeTempDir();
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../../bench/loadtest.ts", import.meta.url).pathname,
        "--client",
        "wrk",
      ],
      env: { PATH: empty, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 2, err);
    assert.ok(err.includes(WRK_INSTALL), err);
    assert.doesNotMatch(err, /error: Uncaught|at \S+\.ts:\d+/);
  } finally {
    await Deno.remove(empty);
  }
});

const installed = await wrkVersion().catch(() => null);

Deno.test({
  name: "runWrk() sends every body byte for byte, with the path and headers (needs wrk)",
  ignore: installed === null,
  async fn() {
    const bodies = [
      Uint8Array.from({ length: 256 }, (_, i) => i),
      new Uint8Array([137, 80, 78, 71]),
      new Uint8Array([0, 10, 13, 34, 92]),
    ];
    const seen = new Set<number>();
    let wrong = 0;
    let n = 0;
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      const body = new Uint8Array(await req.arrayBuffer());
      const u = new URL(req.url);
      const k = bodies.findIndex((b) =>
        b.length === body.length && b.every((v, i) => body[i] === v)
      );
      if (
        k < 0 || u.pathname !== "/v1/classify" || u.search !== "?alpha=0.25&beta=1" ||
        req.method !== "POST" || req.headers.get("content-type") !== "image/png"
      ) wrong++;
      else seen.add(k);
      // Every fifth answer is a refusal, which wrk counts as a status error.
      return new Response("{}", { status: ++n % 5 === 0 ? 429 : 200 });
    });
    try {
      const r = await runWrk(
        {
          method: "POST",
          path: "/v1/classify?alpha=0.25&beta=1",
          headers: { "content-type": "image/png" },
          bodies,
        },
        { port: server.addr.port, connections: 4, threads: 2, durationS: 1, timeoutS: 10 },
      );
      assert.equal(wrong, 0);
      assert.deepEqual([...seen].sort(), [0, 1, 2]);
      assert.ok(r.answered > 0);
      // Answers still in flight when wrk stops are not counted, so it counts at most what we saw.
      assert.ok(r.answered <= n, `${r.answered} <= ${n}`);
      assert.ok(r.statusErrors > 0 && r.statusErrors <= Math.ceil(n / 5));
      assert.equal(r.socketErrors + r.timeouts, 0);
      assert.ok(r.p50 <= r.p99 && r.p99 <= r.max);
    } finally {
      await server.shutdown();
    }
  },
});

const enc = (s: string) => new TextEncoder().encode(s);
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
