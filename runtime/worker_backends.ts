/**
 * The factories inference workers call to build the project's backends by name (see
 * `backend_factory.ts`). Each imports its backend module only when called, so a worker loads
 * onnxruntime-web only if it runs an ORT backend.
 */
import type { WorkerBackend } from "./backend_factory.ts";

/** `ort-wasm`, one WASM thread by default: the scheduler already runs one worker per core. */
export async function createOrtWasm(options: unknown): Promise<WorkerBackend> {
  const { OrtBackend } = await import("./ort.ts");
  const numThreads = (options as { numThreads?: number } | undefined)?.numThreads ?? 1;
  return new OrtBackend("ort-wasm", { numThreads });
}

export async function createOrtWebgpu(): Promise<WorkerBackend> {
  const { OrtBackend } = await import("./ort.ts");
  return new OrtBackend("ort-webgpu");
}
