import assert from "node:assert/strict";
import { LogSink, type LogWriter } from "../../runtime/log_sink.ts";

/** A writer that records what it was given; `gate` holds asynchronous writes until released. */
function recorder(opts: { maxChunk?: number } = {}) {
  const chunks: { text: string; sync: boolean }[] = [];
  const dec = new TextDecoder();
  let gate: Promise<void> = Promise.resolve();
  let open: () => void = () => {};
  const state = { started: 0 };
  const out: LogWriter = {
    async write(p) {
      state.started++;
      await gate;
      const n = Math.min(p.length, opts.maxChunk ?? Infinity);
      chunks.push({ text: dec.decode(p.subarray(0, n)), sync: false });
      return n;
    },
    writeSync(p) {
      const n = Math.min(p.length, opts.maxChunk ?? Infinity);
      chunks.push({ text: dec.decode(p.subarray(0, n)), sync: true });
      return n;
    },
  };
  return {
    out,
    chunks,
    state,
    text: () => chunks.map((c) => c.text).join(""),
    hold() {
      gate = new Promise((r) => (open = r));
    },
    release: () => open(),
  };
}

Deno.test("LogSink: lines arrive in order, newline-terminated, in few writes, after close", async () => {
  const r = recorder();
  const sink = new LogSink({ out: r.out, flushMs: 1 });
  for (let i = 0; i < 100; i++) sink.log(`{"i":${i}}`);
  assert.equal(r.chunks.length, 0, "nothing is written on the caller's turn");
  await sink.close();
  assert.equal(r.text(), Array.from({ length: 100 }, (_, i) => `{"i":${i}}\n`).join(""));
  assert.ok(r.chunks.length <= 2, `${r.chunks.length} writes for 100 lines`);
});

Deno.test("LogSink: partial writes are completed", async () => {
  const r = recorder({ maxChunk: 7 });
  const sink = new LogSink({ out: r.out, flushMs: 1 });
  sink.log("first line");
  sink.log("second line");
  await sink.close();
  assert.equal(r.text(), "first line\nsecond line\n");
});

Deno.test("LogSink: the timer flushes without close", async () => {
  const r = recorder();
  const sink = new LogSink({ out: r.out, flushMs: 1 });
  sink.log("a");
  for (let i = 0; i < 100 && r.text() === ""; i++) await new Promise((ok) => setTimeout(ok, 5));
  assert.equal(r.text(), "a\n");
  await sink.close();
});

Deno.test("LogSink: a reader that falls behind gets synchronous writes, in order", async () => {
  const r = recorder();
  const sink = new LogSink({ out: r.out, flushMs: 1, maxBufferedBytes: 300 });
  for (let i = 0; i < 50; i++) sink.log(`line ${i}`);
  assert.ok(r.chunks.some((c) => c.sync), "over the limit the caller writes");
  await sink.close();
  assert.equal(r.text(), Array.from({ length: 50 }, (_, i) => `line ${i}\n`).join(""));
});

Deno.test("LogSink: while one write is stuck, lines beyond 4x the limit are dropped and counted", async () => {
  const r = recorder();
  const sink = new LogSink({ out: r.out, flushMs: 1, maxBufferedBytes: 300 });
  r.hold();
  sink.log("before");
  // Wait until the timer has started the (held) write.
  for (let i = 0; i < 1000 && r.state.started === 0; i++) {
    await new Promise((ok) => setTimeout(ok, 2));
  }
  assert.equal(r.state.started, 1);
  for (let i = 0; i < 200; i++) sink.log(`line ${i}`);
  r.release();
  await sink.close();
  const lines = r.text().trimEnd().split("\n");
  assert.equal(lines[0], "before");
  assert.ok(!r.chunks.some((c) => c.sync), "never a synchronous write beside the stuck one");
  const note = JSON.parse(lines.at(-1)!);
  assert.equal(note.msg, "log lines dropped: the log reader stopped reading");
  const kept = lines.length - 2;
  assert.equal(kept + note.count, 200);
  assert.ok(note.count > 0);
  // What was kept is in order.
  for (let i = 1; i <= kept; i++) assert.equal(lines[i], `line ${i - 1}`);
});
