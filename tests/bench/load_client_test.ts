import assert from "node:assert/strict";
import {
  encodeRequest,
  latenciesWhere,
  percentile,
  runLoad,
  spawnServer,
} from "../../bench/load_client.ts";

Deno.test("runLoad() sends exactly maxRequests over keep-alive connections and counts every status", async () => {
  let seen = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    seen++;
    const url = new URL(req.url);
    const body = new Uint8Array(await req.arrayBuffer());
    if (url.pathname === "/chunked") {
      // A streamed answer arrives with chunked transfer encoding.
      return new Response(
        new ReadableStream({
          start(c) {
            c.enqueue(new TextEncoder().encode("part one,"));
            c.enqueue(new TextEncoder().encode("part two"));
            c.close();
          },
        }),
      );
    }
    return new Response(`got ${body.length}`, { status: body.length > 3 ? 429 : 200 });
  });
  try {
    const port = server.addr.port;
    const requests = [
      encodeRequest("POST", "/a", port, {}, new Uint8Array(2)),
      encodeRequest("POST", "/a", port, {}, new Uint8Array(5)),
      encodeRequest("GET", "/chunked", port),
    ];
    const r = await runLoad({
      port,
      requests,
      connections: 4,
      maxRequests: 300,
      durationMs: 60_000,
    });
    assert.equal(r.sent, 300);
    assert.equal(r.latencies.length, 300);
    assert.equal(seen, 300);
    assert.equal(r.statusCounts.get(200), 200);
    assert.equal(r.statusCounts.get(429), 100);
    assert.equal(r.socketErrors + r.timeouts, 0);
    assert.equal(latenciesWhere(r, (s) => s === 429).length, 100);
  } finally {
    await server.shutdown();
  }
});

Deno.test("runLoad() in open loop sends at most rate x duration requests", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("ok"),
  );
  try {
    const port = server.addr.port;
    const r = await runLoad({
      port,
      requests: [encodeRequest("GET", "/", port)],
      connections: 4,
      maxRequests: 10_000,
      durationMs: 300,
      ratePerS: 200,
    });
    assert.ok(r.sent <= 61, `sent ${r.sent}`);
    assert.ok(r.sent >= 1);
  } finally {
    await server.shutdown();
  }
});

Deno.test("runLoad() opens a new connection after an answer that says Connection: close", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("bye", { headers: { connection: "close" } }),
  );
  try {
    const port = server.addr.port;
    const r = await runLoad({
      port,
      requests: [encodeRequest("GET", "/", port)],
      connections: 2,
      maxRequests: 50,
      durationMs: 30_000,
    });
    assert.equal(r.statusCounts.get(200), 50);
    assert.equal(r.socketErrors, 0);
  } finally {
    await server.shutdown();
  }
});

Deno.test("percentile() uses the nearest rank", () => {
  const s = Float64Array.from({ length: 100 }, (_, i) => 100 - i);
  assert.equal(percentile(s, 0.5), 50);
  assert.equal(percentile(s, 0.99), 99);
  assert.ok(Number.isNaN(percentile(new Float64Array(0), 0.5)));
});

Deno.test({
  name: "spawnServer() runs the server with its log drained outside this process, and stops it",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const script = `${dir}/server.ts`;
      // A server that logs a long line per request, as the service does, and exits 0 on SIGTERM.
      await Deno.writeTextFile(
        script,
        `const s = Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.env.get("PORT")), onListen() {} },
          () => { console.log("x".repeat(200)); return new Response("ok"); });
        Deno.addSignalListener("SIGTERM", () => s.shutdown().then(() => Deno.exit(0)));`,
      );
      const s = await spawnServer(["run", "-A", script]);
      // The pid is the server's own (bash exec'd it), as the soak's memory sampling needs.
      assert.equal(Deno.readTextFileSync(`/proc/${s.pid}/comm`).trim(), "deno");
      const r = await runLoad({
        port: s.port,
        requests: [encodeRequest("GET", "/", s.port)],
        connections: 4,
        maxRequests: 2000,
        durationMs: 20_000,
      });
      assert.equal(r.statusCounts.get(200), 2000);
      assert.equal(await s.stop(), 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("spawnServer() reports a server that exits before it listens", async () => {
  await assert.rejects(
    spawnServer(["eval", "Deno.exit(3)"]),
    /the server exited with 3 before listening/,
  );
});
