// Stands in for onnxruntime-web in the Cloudflare Workers bundle. runtime/registry.ts imports
// runtime/ort.ts for its ort-wasm backend, which the Workers build never creates: onnxruntime-web
// compiles its 14 MB .wasm from bytes, which Workers forbid. Any use fails with the reason.
function unavailable() {
  throw new TypeError(
    "Cannot use onnxruntime-web on Cloudflare Workers as it compiles WebAssembly from bytes: " +
      "the Workers build serves backend kernels-wasm",
  );
}
export const env = { wasm: {}, webgpu: {} };
export const InferenceSession = { create: unavailable };
export class Tensor {
  constructor() {
    unavailable();
  }
}
export default { env, InferenceSession, Tensor };
