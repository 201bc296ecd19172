/**
 * Backend set-up for training: tfjs's wasm backend plus the gradient kernels it lacks.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
// tfjs-core's bundle registers no gradient functions, and its register_all_gradients.js uses
// extension-less ESM imports Deno cannot resolve; the tfjs umbrella package's bundle registers them.
import "@tensorflow/tfjs";
import { registerComposedGradKernels } from "../../kernels/grad/composed.ts";
import { registerOwnGradKernels } from "../../kernels/grad/register.ts";

/** `composed`: the stock baseline from existing ops; `own`: the project's kernels. */
export type GradKernels = "composed" | "own";
export const GRAD_KERNELS: readonly GradKernels[] = ["composed", "own"];

export async function setupBackend(kernels: GradKernels): Promise<void> {
  if (kernels === "own") registerOwnGradKernels("wasm");
  else registerComposedGradKernels("wasm");
  if (tf.getBackend() !== "wasm") {
    const ok = await tf.setBackend("wasm");
    if (!ok) throw new TypeError("Cannot train as the tfjs wasm backend failed to initialize");
  }
  await tf.ready();
}
