import assert from "node:assert/strict";
import { preprocessImage } from "../../kernels/image/preprocess.ts";
import { PreprocessPool, RemoteImageError } from "../../runtime/preprocess_pool.ts";

const data = (p: string) => Deno.readFile(new URL(`../fixtures/data/${p}`, import.meta.url));
const opts = {
  resolution: 28,
  channels: 1 as const,
  mean: [0.286],
  std: [0.353],
  invert: "auto" as const,
};

Deno.test("PreprocessPool gives the same tensor in a worker as inline, for a large photo", async () => {
  // inlineMaxPixels 0 forces every image through the worker.
  const pool = new PreprocessPool({ workers: 1, inlineMaxPixels: 0 });
  try {
    const bytes = await data("fmnist/photo/t10k_00000.jpg");
    const inline = await preprocessImage(bytes.slice(), opts);
    const remote = await pool.preprocess(bytes.slice(), opts);
    assert.deepEqual(remote.shape, inline.shape);
    assert.deepEqual(remote.tensor, inline.tensor);
    assert.equal(remote.inverted, true);
  } finally {
    pool.close();
  }
});

Deno.test("PreprocessPool carries image errors back from the worker with their HTTP status", async () => {
  const pool = new PreprocessPool({ workers: 1, inlineMaxPixels: 0 });
  try {
    // A truncated JPEG: its header declares a size, so it goes to the worker, which fails to decode.
    const bytes = await data("edge/truncated.jpg");
    await assert.rejects(pool.preprocess(bytes, opts), (e: unknown) => {
      assert.ok(e instanceof RemoteImageError, String(e));
      assert.equal(e.status, 422);
      assert.equal(e.name, "UndecodableImageError");
      return true;
    });
    // The worker still answers afterwards.
    const ok = await pool.preprocess(await data("fmnist/png/t10k_00001.png"), opts);
    assert.deepEqual(ok.shape, [1, 1, 28, 28]);
  } finally {
    pool.close();
  }
});

Deno.test("PreprocessPool keeps small images inline and refuses a PNG bomb from its header", async () => {
  const pool = new PreprocessPool({ workers: 1 });
  try {
    const small = await pool.preprocess(await data("fmnist/png/t10k_00002.png"), opts);
    assert.deepEqual(small.shape, [1, 1, 28, 28]);
    await assert.rejects(
      pool.preprocess(await data("edge/bomb_16000x16000.png"), opts),
      (e: unknown) => (e as { status?: number }).status === 413,
    );
  } finally {
    pool.close();
  }
});
