/**
 * Backend factories: how an inference worker builds a backend by name. A worker is a separate
 * isolate, so it cannot receive a backend object; it receives a spec (module URL, export name,
 * structured-clonable options), imports the module and calls the factory. Every backend module
 * exports such a factory; `registerBackendFactory` adds one (tests register their own).
 */
import type { InferenceBackend } from "./backend.ts";

/** What a worker needs to build one backend. Everything in it survives `postMessage`. */
export interface BackendFactorySpec {
  /** The backend's name as the scheduler, the metrics and the answers show it ("ort-wasm"). */
  backend: string;
  /** URL of the module that exports the factory. */
  module: string;
  /** Name of the exported factory: `(options) => backend` (sync or async). */
  exportName: string;
  /** Passed to the factory as is (thread count, ...). */
  options?: unknown;
}

/** A backend as a worker holds it; `name` may be a test backend's own name. */
export type WorkerBackend = Omit<InferenceBackend, "name"> & { readonly name: string };

export type BackendFactory = (options: unknown) => WorkerBackend | Promise<WorkerBackend>;

const factories = new Map<string, Omit<BackendFactorySpec, "options">>();

/** Registers (or replaces) the factory for a backend name. */
export function registerBackendFactory(spec: Omit<BackendFactorySpec, "options">): void {
  factories.set(spec.backend, {
    backend: spec.backend,
    module: spec.module,
    exportName: spec.exportName,
  });
}

/** The spec for a registered backend name, with options; throws listing the registered names. */
export function backendFactory(backend: string, options?: unknown): BackendFactorySpec {
  const f = factories.get(backend);
  if (!f) {
    throw new RangeError(
      `Cannot build backend "${backend}" as no factory is registered for it: registered are ${
        [...factories.keys()].join(", ") || "none"
      }`,
    );
  }
  return options === undefined ? { ...f } : { ...f, options };
}

export function registeredBackends(): string[] {
  return [...factories.keys()];
}

/** Worker side: imports the module named by the spec and builds the backend. */
export async function buildBackend(spec: BackendFactorySpec): Promise<WorkerBackend> {
  let mod: Record<string, unknown>;
  try {
    mod = await import(spec.module);
  } catch (err) {
    throw new TypeError(
      `Cannot build backend "${spec.backend}" as its module failed to load: ${spec.module}: ${
        err instanceof Error ? err.message : String(err)
      }`,
    );
  }
  const factory = mod[spec.exportName];
  if (typeof factory !== "function") {
    throw new TypeError(
      `Cannot build backend "${spec.backend}" as ${spec.module} does not export a function named ${spec.exportName}`,
    );
  }
  return await (factory as BackendFactory)(spec.options);
}

// The project's backends.
const WORKER_BACKENDS = new URL("./worker_backends.ts", import.meta.url).href;
registerBackendFactory({
  backend: "kernels-wasm",
  module: new URL("./engine/kernels_wasm_backend.ts", import.meta.url).href,
  exportName: "createKernelsWasm",
});
registerBackendFactory({
  backend: "kernels-webgpu",
  module: new URL("./engine/kernels_webgpu_backend.ts", import.meta.url).href,
  exportName: "createKernelsWebgpu",
});
registerBackendFactory({
  backend: "ort-wasm",
  module: WORKER_BACKENDS,
  exportName: "createOrtWasm",
});
registerBackendFactory({
  backend: "ort-webgpu",
  module: WORKER_BACKENDS,
  exportName: "createOrtWebgpu",
});
