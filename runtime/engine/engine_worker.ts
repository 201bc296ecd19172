/**
 * Worker side of `ParallelInt8Engine`: holds its own `Int8Engine` (own wasm memory) and runs the
 * slices of a batch it is sent. Messages: `{ type: "load", onnx, maxBatch }` ->
 * `{ type: "loaded" }`; `{ type: "run", id, input, shape }` -> `{ type: "result", id, logits }`;
 * any failure -> `{ type: "error", id?, message }`.
 */
/// <reference lib="deno.worker" />
import { Int8Engine } from "./engine.ts";

let engine: Int8Engine | null = null;

self.onmessage = async (e: MessageEvent) => {
  const msg = e.data as
    | { type: "load"; onnx: Uint8Array; maxBatch: number }
    | { type: "run"; id: number; input: Float32Array; shape: [number, number, number, number] };
  try {
    if (msg.type === "load") {
      engine = await Int8Engine.load(msg.onnx, { maxBatch: msg.maxBatch });
      self.postMessage({ type: "loaded" });
    } else {
      if (!engine) throw new TypeError("Cannot run in the engine worker as no model is loaded");
      const logits = engine.run(msg.input, msg.shape);
      self.postMessage({ type: "result", id: msg.id, logits }, [logits.buffer as ArrayBuffer]);
    }
  } catch (err) {
    self.postMessage({
      type: "error",
      id: msg.type === "run" ? msg.id : undefined,
      message: err instanceof Error ? err.message : String(err),
    });
  }
};
