/**
 * The WGSL int8 kernels against the shared conformance cases (tests/kernels/int8/conformance.ts):
 * the same seeded, edge-value and ONNX node cases, the same named tolerances (integer outputs
 * exact). The suite's cases call a synchronous `Int8Kernels`; a GPU readback is async, so each case
 * runs in three passes: record the kernel calls it makes (on the reference), run each call on the
 * GPU, then run the case again with the GPU's results handed back in order (the replay checks the
 * calls are the same). Skips itself when this runtime has no WebGPU adapter (STYLE.md item 10).
 */
import assert from "node:assert/strict";
import {
  assertAllClose,
  type ConformanceCase,
  generatedCases,
  onnxCases,
  rng,
  TOLERANCES,
} from "../int8/conformance.ts";
import { type Int8Kernels, referenceInt8Kernels } from "../../../kernels/int8/kernel_set.ts";
import { requantize } from "../../../kernels/int8/requantize.ts";
import {
  type AsyncInt8Kernels,
  checkBindingSize,
  createComputePipeline,
  createInt8Gpu,
  createWebGpuInt8Kernels,
  grid,
} from "../../../kernels/webgpu/int8_webgpu.ts";
import { MAX_WORKGROUPS_PER_DIM, WG } from "../../../kernels/webgpu/int8_shaders.ts";

const ignore = !(await navigator.gpu?.requestAdapter());
const SKIP = ignore ? " (skipped: no WebGPU adapter in this runtime)" : "";

type Method = Exclude<keyof Int8Kernels, "name">;
const METHODS: readonly Method[] = [
  "conv2d",
  "depthwise",
  "pointwise",
  "gemm",
  "fc",
  "fcToFloat",
  "globalAvgPool",
  "requantize",
];
type Output = Uint8Array | Float32Array;
interface Call {
  method: Method;
  args: unknown[];
}

/** Kernels that answer with `answer(call)` and record every call. */
function scripted(answer: (call: Call, i: number) => Output, calls: Call[]): Int8Kernels {
  const k: Record<string, unknown> = { name: "scripted" };
  for (const method of METHODS) {
    k[method] = (...args: unknown[]) => {
      const call = { method, args };
      const out = answer(call, calls.length);
      calls.push(call);
      return out;
    };
  }
  return k as unknown as Int8Kernels;
}

/** Runs one conformance case on the async GPU kernels. */
async function runOnGpu(kase: ConformanceCase, gpu: AsyncInt8Kernels): Promise<Output> {
  const recorded: Call[] = [];
  kase.run(scripted(
    (c) => (referenceInt8Kernels[c.method] as (...a: unknown[]) => Output)(...c.args),
    recorded,
  ));
  const results: Output[] = [];
  for (const c of recorded) {
    results.push(await (gpu[c.method] as (...a: unknown[]) => Promise<Output>)(...c.args));
  }
  const replayed: Call[] = [];
  const out = kase.run(scripted((c, i) => {
    const want = recorded[i];
    if (!want || want.method !== c.method) {
      throw new TypeError(`replay of ${kase.name} diverged at call ${i} (${c.method})`);
    }
    return results[i]!;
  }, replayed));
  assert.equal(replayed.length, recorded.length);
  return out;
}

async function withGpu(fn: (device: GPUDevice) => Promise<void>): Promise<void> {
  const adapter = await navigator.gpu.requestAdapter();
  const device = await adapter!.requestDevice();
  try {
    await fn(device);
  } finally {
    device.destroy();
  }
}

Deno.test({
  name: `int8 conformance: webgpu matches the reference and ONNX node data${SKIP}`,
  ignore,
  fn: async (t) => {
    await withGpu(async (device) => {
      const gpu = createWebGpuInt8Kernels(await createInt8Gpu(device));
      const cases = [...generatedCases(), ...(await onnxCases())];
      for (const kase of cases) {
        await t.step(kase.name, async () => {
          const expected = kase.expected ? kase.expected() : kase.run(referenceInt8Kernels);
          assertAllClose(await runOnGpu(kase, gpu), expected, kase.tolerance);
        });
      }
    });
  },
});

Deno.test({
  name: `createComputePipeline() names the stage when WGSL fails to compile${SKIP}`,
  ignore,
  fn: () =>
    withGpu(async (device) => {
      await assert.rejects(
        () => createComputePipeline(device, "broken", "fn main( {"),
        /Cannot create the WebGPU int8 pipeline "broken" \(shader module\)/,
      );
      // valid WGSL without the `main` entry point: the module compiles, the pipeline does not
      await assert.rejects(
        () =>
          createComputePipeline(
            device,
            "no_entry",
            "@compute @workgroup_size(1) fn other() {}",
          ),
        /Cannot create the WebGPU int8 pipeline "no_entry" \(compute pipeline\)/,
      );
    }),
});

Deno.test("grid() folds more than 65535 workgroups into a second dimension", () => {
  assert.deepEqual(grid(0), { x: 1, y: 1, rowStride: WG });
  assert.deepEqual(grid(WG * 10 + 1), { x: 11, y: 1, rowStride: 11 * WG });
  const g = grid(WG * MAX_WORKGROUPS_PER_DIM + 1);
  assert.deepEqual(g, { x: MAX_WORKGROUPS_PER_DIM, y: 2, rowStride: MAX_WORKGROUPS_PER_DIM * WG });
});

Deno.test({
  name: `webgpu requantize covers a 2-D dispatch grid (over 65535 workgroups) exactly${SKIP}`,
  ignore,
  fn: () =>
    withGpu(async (device) => {
      const gpu = createWebGpuInt8Kernels(await createInt8Gpu(device));
      const channels = 3;
      const rows = Math.ceil((WG * MAX_WORKGROUPS_PER_DIM + 7) / channels);
      const r = rng(77);
      const acc = Int32Array.from({ length: rows * channels }, () => Math.floor((r() - 0.5) * 4e5));
      const params = { multipliers: [0.001, 0.0005, 0.002], zeroPoint: 100 };
      const got = await gpu.requantize(acc, [rows, channels], params);
      assertAllClose(got, requantize(acc, [rows, channels], params), TOLERANCES.integer, [
        rows,
        channels,
      ]);
    }),
});

Deno.test({
  name: `webgpu kernels reject bad shapes before touching the GPU, as the reference does${SKIP}`,
  ignore,
  fn: () =>
    withGpu(async (device) => {
      const gpu = createWebGpuInt8Kernels(await createInt8Gpu(device));
      await assert.rejects(
        () =>
          gpu.pointwise(new Uint8Array(8), [1, 2, 2, 2], {
            weights: new Int8Array(6),
            weightShape: [3, 3, 1, 1],
            weightScales: [0.1],
            inScale: 0.1,
            inZeroPoint: 0,
            outScale: 0.1,
            outZeroPoint: 0,
          }),
        /weights must be \[outC, 2, 1, 1\]/,
      );
      await assert.rejects(
        () =>
          gpu.globalAvgPool(new Uint8Array(3), [1, 2, 2, 1], {
            input: { scale: 0.1, zeroPoint: 0 },
            output: { scale: 0.1, zeroPoint: 0 },
          }),
        /must hold 4 values: current length is 3/,
      );
    }),
});

Deno.test({
  name: `checkBindingSize() refuses a buffer above the device's maxStorageBufferBindingSize${SKIP}`,
  ignore,
  fn: () =>
    withGpu((device) => {
      const limit = device.limits.maxStorageBufferBindingSize;
      checkBindingSize(device, limit, "fits");
      assert.throws(
        () => checkBindingSize(device, limit + 4, "activations"),
        new RegExp(
          `buffer "activations" as it needs ${limit + 4} bytes: the device binds at most ${limit}`,
        ),
      );
      return Promise.resolve();
    }),
});

Deno.test({
  name: `webgpu GEMM equals the reference for every row and channel tail of its 4x4 tile${SKIP}`,
  ignore,
  fn: () =>
    withGpu(async (device) => {
      const gpu = createWebGpuInt8Kernels(await createInt8Gpu(device));
      const r = rng(5);
      const k = 3;
      for (let m = 1; m <= 5; m++) {
        for (let n = 1; n <= 5; n++) {
          const a = Uint8Array.from({ length: m * k }, () => Math.floor(r() * 256));
          const params = {
            weights: Int8Array.from({ length: n * k }, () => Math.floor(r() * 256) - 128),
            outChannels: n,
            weightScales: Float32Array.from({ length: n }, () => 0.01 + r() * 0.01),
            bias: Int32Array.from({ length: n }, () => Math.floor((r() - 0.5) * 2000)),
            inScale: 0.05,
            inZeroPoint: 100,
            outScale: 0.2,
            outZeroPoint: 120,
          };
          const shape = [m, k] as const;
          assertAllClose(
            await gpu.gemm(a, shape, params),
            referenceInt8Kernels.gemm(a, shape, params),
            TOLERANCES.integer,
            [m, n],
          );
          assertAllClose(
            await gpu.fcToFloat(a, shape, params),
            referenceInt8Kernels.fcToFloat(a, shape, params),
            TOLERANCES.fcFloat,
            [m, n],
          );
        }
      }
    }),
});
