import assert from "node:assert/strict";
import { configureOrtWasm, OrtBackend, webgpuAdapterInfo } from "../../runtime/ort.ts";
import { tinyLogits, tinyModel } from "./tiny_model.ts";
import type { LoadedModel } from "../../runtime/backend.ts";

const ATOL = 1e-5;
const adapter = await webgpuAdapterInfo();
const NO_WEBGPU = adapter === null;
if (NO_WEBGPU) {
  console.log(
    "ort-webgpu tests skipped: navigator.gpu gives no adapter (install mesa-vulkan-drivers)",
  );
}

function loaded(
  channels: number,
  classes: number,
): { model: LoadedModel; tiny: ReturnType<typeof tinyModel> } {
  const tiny = tinyModel(channels, classes);
  return {
    tiny,
    model: {
      id: "tiny",
      onnx: tiny.onnx,
      inputName: "input",
      outputName: "logits",
      inputChannels: channels,
      classes,
    },
  };
}

function ramp(n: number, offset: number): Float32Array {
  return new Float32Array(n).map((_, i) => Math.cos(i * 0.37 + offset));
}

function assertClose(actual: Float32Array, expected: Float32Array, atol: number): void {
  assert.equal(actual.length, expected.length, "length");
  for (let i = 0; i < actual.length; i++) {
    assert.ok(
      Math.abs(actual[i]! - expected[i]!) <= atol,
      `index ${i}: got ${actual[i]}, expected ${expected[i]} (atol ${atol})`,
    );
  }
}

for (const name of ["ort-wasm", "ort-webgpu"] as const) {
  const ignore = name === "ort-webgpu" && NO_WEBGPU;
  // WebGPU on a software adapter runs float math in a different order: a looser tolerance.
  const atol = name === "ort-webgpu" ? 1e-3 : ATOL;

  Deno.test({
    name: `${name} run() gives the logits the plain TypeScript model gives, batch 2 at 28x28`,
    ignore,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const { model, tiny } = loaded(3, 10);
      const b = new OrtBackend(name, { numThreads: 1 });
      await b.load(model);
      try {
        const x = ramp(2 * 3 * 28 * 28, 0);
        const y = await b.run(x, [2, 3, 28, 28]);
        assertClose(y, tinyLogits(tiny, x, 2, 28, 28), atol);
      } finally {
        await b.dispose();
      }
    },
  });

  Deno.test({
    name:
      `${name} answers 6 concurrent run() calls each with its own result (serialized per session)`,
    ignore,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const { model, tiny } = loaded(1, 10);
      const b = new OrtBackend(name, { numThreads: 1 });
      await b.load(model);
      try {
        const inputs = Array.from({ length: 6 }, (_, i) => ramp(32 * 32, i));
        const outs = await Promise.all(inputs.map((x) => b.runTimed(x, [1, 1, 32, 32])));
        outs.forEach((o, i) => {
          assertClose(o.output, tinyLogits(tiny, inputs[i]!, 1, 32, 32), atol);
          assert.ok(o.waitMs >= 0 && o.runMs >= 0);
        });
      } finally {
        await b.dispose();
      }
    },
  });
}

Deno.test({
  name: "ort-wasm run() refuses an input whose channels differ from the model's, naming the shape",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { model } = loaded(1, 10);
    const b = new OrtBackend("ort-wasm", { numThreads: 1 });
    await b.load(model);
    try {
      await assert.rejects(
        b.run(new Float32Array(3 * 8 * 8), [1, 3, 8, 8]),
        (e: unknown) =>
          e instanceof TypeError && /1 channels: current shape is \[1,3,8,8\]/.test(e.message),
      );
      // A refused call does not block the next one.
      const ok = await b.run(new Float32Array(64), [1, 1, 8, 8]);
      assert.equal(ok.length, 10);
    } finally {
      await b.dispose();
    }
  },
});

Deno.test({
  name:
    "ort-wasm load() names the missing input when the manifest's input name is not in the graph",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { model } = loaded(1, 10);
    const b = new OrtBackend("ort-wasm", { numThreads: 1 });
    await assert.rejects(
      b.load({ ...model, inputName: "pixels" }),
      /no input pixels: inputs are input/,
    );
  },
});

for (const name of ["ort-wasm", "ort-webgpu"] as const) {
  Deno.test({
    ...opts0(),
    name:
      `${name} runs inside a module Worker (where location.origin is "null"), started after ORT loaded here`,
    ignore: name === "ort-webgpu" && NO_WEBGPU,
    fn: async () => {
      const tiny = tinyModel(1, 10);
      const input = ramp(28 * 28, 3);
      const worker = new Worker(new URL("./ort_worker.ts", import.meta.url), {
        type: "module",
      });
      try {
        const answer = await new Promise<{ logits?: Float32Array; error?: string }>((ok, fail) => {
          worker.onmessage = (e) => ok(e.data);
          worker.onerror = (e) => {
            e.preventDefault();
            fail(new Error(e.message));
          };
          worker.postMessage({
            backend: name,
            onnx: tiny.onnx,
            input,
            shape: [1, 1, 28, 28],
            classes: 10,
          });
        });
        assert.equal(answer.error, undefined);
        assertClose(
          answer.logits!,
          tinyLogits(tiny, input, 1, 28, 28),
          name === "ort-webgpu" ? 1e-3 : ATOL,
        );
      } finally {
        worker.terminate();
      }
    },
  });
}

Deno.test({
  ...opts0(),
  name: "ort-wasm answers concurrent run() calls on two sessions of different models correctly",
  fn: async () => {
    const a = tinyModel(1, 10, 1);
    const b = tinyModel(1, 10, 2);
    const ba = new OrtBackend("ort-wasm", { numThreads: 1 });
    const bb = new OrtBackend("ort-wasm", { numThreads: 1 });
    const model = (t: typeof a, id: string) => ({
      id,
      onnx: t.onnx,
      inputName: "input",
      outputName: "logits",
      inputChannels: 1,
      classes: 10,
    });
    await ba.load(model(a, "a"));
    await bb.load(model(b, "b"));
    try {
      const inputs = Array.from({ length: 8 }, (_, i) => ramp(20 * 20, i * 0.5));
      const outs = await Promise.all(
        inputs.map((x, i) => (i % 2 ? bb : ba).run(x, [1, 1, 20, 20])),
      );
      outs.forEach((o, i) =>
        assertClose(o, tinyLogits(i % 2 ? b : a, inputs[i]!, 1, 20, 20), ATOL)
      );
    } finally {
      await ba.dispose();
      await bb.dispose();
    }
  },
});

Deno.test({
  ...opts0(),
  name: "configureOrtWasm() refuses another thread count once the WASM instance runs",
  fn: async () => {
    const { model } = loaded(1, 10);
    const b = new OrtBackend("ort-wasm", { numThreads: 1 });
    await b.load(model);
    try {
      assert.throws(() => configureOrtWasm({ numThreads: 2 }), /already runs with 1 threads/);
      assert.equal(configureOrtWasm({ numThreads: 1 }), 1);
      assert.throws(() => configureOrtWasm({ numThreads: 0 }), /integer in \[1, 64\]/);
    } finally {
      await b.dispose();
    }
  },
});

function opts0() {
  return { sanitizeResources: false, sanitizeOps: false };
}

Deno.test("OrtBackend refuses a backend name it does not implement", () => {
  assert.throws(
    () => new OrtBackend("kernels-wasm" as "ort-wasm"),
    /name must be one of ort-wasm, ort-webgpu/,
  );
});
