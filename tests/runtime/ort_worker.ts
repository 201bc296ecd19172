/**
 * Worker side of ort_test's "inside a module Worker" tests: loads the tiny model into the backend the
 * message names and answers the logits of the input it was sent.
 */
/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
import { OrtBackend, type OrtBackendName } from "../../runtime/ort.ts";

interface Job {
  backend: OrtBackendName;
  onnx: Uint8Array;
  input: Float32Array;
  shape: [number, number, number, number];
  classes: number;
}

self.onmessage = async (e: MessageEvent<Job>) => {
  const { backend, onnx, input, shape, classes } = e.data;
  const b = new OrtBackend(backend, { numThreads: 1 });
  try {
    await b.load({
      id: "tiny",
      onnx,
      inputName: "input",
      outputName: "logits",
      inputChannels: shape[1],
      classes,
    });
    self.postMessage({ logits: await b.run(input, shape) });
  } catch (err) {
    self.postMessage({ error: err instanceof Error ? err.message : String(err) });
  } finally {
    await b.dispose();
  }
};
