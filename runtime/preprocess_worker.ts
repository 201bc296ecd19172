/**
 * A preprocessing worker: decodes, resizes and normalizes one image off the HTTP event loop, so a
 * large photo (hundreds of ms to decode) never stalls the requests behind it. Started by
 * `runtime/preprocess_pool.ts`.
 */
/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
import { isImageError } from "../kernels/image/errors.ts";
import { preprocessImage } from "../kernels/image/preprocess.ts";
import type { PreprocessNice, PreprocessReply, PreprocessRequest } from "./preprocess_pool.ts";
import { setThisThreadNice } from "./set_thread_nice.ts";

self.onmessage = async (e: MessageEvent<PreprocessRequest | PreprocessNice>) => {
  if (!("id" in e.data)) {
    setThisThreadNice(e.data.nice);
    return;
  }
  const { id, bytes, options } = e.data;
  try {
    const result = await preprocessImage(bytes, options);
    const reply: PreprocessReply = { id, ok: true, result };
    self.postMessage(reply, [result.tensor.buffer as ArrayBuffer]);
  } catch (err) {
    const reply: PreprocessReply = {
      id,
      ok: false,
      name: err instanceof Error ? err.name : "Error",
      message: err instanceof Error ? err.message : String(err),
      status: isImageError(err) ? err.status : 500,
    };
    self.postMessage(reply);
  }
};
