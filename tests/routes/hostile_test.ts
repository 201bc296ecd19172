/**
 * Hostile and broken input (issue #4 item 5): one named test each. After every one, an ordinary
 * request must still get exactly the answer it got before any of them.
 */
import assert from "node:assert/strict";
import { createApp } from "../../app.ts";
import { ModelRegistry } from "../../runtime/registry.ts";
import { readFixture } from "../fixtures/fixtures.ts";
import { writeTinyArtifacts } from "../runtime/tiny_artifacts.ts";

const MAX_BODY = 256 * 1024;
const artifacts = await writeTinyArtifacts({ alphas: [0.25, 0.5, 0.75, 1] });
const registry = await ModelRegistry.open({ dir: artifacts.dir, warmupRuns: 1 });
await registry.load();
const app = createApp({
  readiness: registry,
  classify: { models: registry, maxBodyBytes: MAX_BODY },
});

const fixture = async (rel: string) => new Uint8Array(await readFixture(rel));
const ordinary = await fixture("fmnist/png/t10k_00001.png");

async function post(body: BodyInit | null, query = "", headers: Record<string, string> = {}) {
  const res = await app.request(`/v1/classify${query}`, { method: "POST", body, headers });
  const text = await res.text();
  return { res, body: JSON.parse(text) };
}

const baseline = (await post(ordinary, "?alpha=0.5")).body.predictions;
assert.equal(baseline.length, 5);

/** Registers a test that runs `fn`, then checks the next ordinary request is answered correctly. */
function hostile(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      await fn();
      const after = await post(ordinary, "?alpha=0.5");
      assert.equal(after.res.status, 200, "the next ordinary request failed");
      assert.deepEqual(
        after.body.predictions,
        baseline,
        "the next ordinary request changed answer",
      );
    },
  });
}

function assertProblem(
  r: { res: Response; body: { status: number; detail: string } },
  status: number,
  detail: RegExp,
): void {
  assert.equal(r.res.status, status, JSON.stringify(r.body));
  assert.equal(r.res.headers.get("content-type"), "application/problem+json");
  assert.equal(r.body.status, status);
  assert.match(r.body.detail, detail);
}

hostile(
  "POST /v1/classify answers 400 for an empty body, saying how to send an image",
  async () => {
    assertProblem(
      await post(await fixture("edge/empty.bin")),
      400,
      /body is empty: send the image/,
    );
    assertProblem(await post(null), 400, /body is empty/);
  },
);

hostile("POST /v1/classify answers 415 for random bytes, listing the supported types", async () => {
  assertProblem(
    await post(await fixture("edge/random.bin")),
    415,
    /not a supported image type: send one of jpeg, png, gif, webp, bmp/,
  );
});

hostile("POST /v1/classify answers 415 for a text file sent as image/png", async () => {
  assertProblem(
    await post(await fixture("edge/text.txt"), "", { "content-type": "image/png" }),
    415,
    /not a supported image type/,
  );
});

hostile("POST /v1/classify answers 422 for a truncated JPEG", async () => {
  assertProblem(await post(await fixture("edge/truncated.jpg")), 422, /Cannot decode the jpeg/);
});

hostile("POST /v1/classify answers 422 for a truncated PNG", async () => {
  assertProblem(await post(await fixture("edge/truncated.png")), 422, /Cannot decode the png/);
});

hostile("POST /v1/classify answers 422 for undecodable data behind a JPEG signature", async () => {
  const bytes = new Uint8Array(600).map((_, i) => (i * 37 + 11) & 0xff);
  bytes.set([0xff, 0xd8, 0xff, 0xdb]);
  assertProblem(await post(bytes), 422, /Cannot decode the jpeg/);
});

hostile(
  "POST /v1/classify answers 413 for a 16000x16000 PNG bomb from its header, without decoding",
  async () => {
    const rss = Deno.memoryUsage().rss;
    const r = await post(await fixture("edge/bomb_16000x16000.png"));
    assertProblem(
      r,
      413,
      /16000x16000 image as it has 256000000 pixels, above the limit of 40000000/,
    );
    assert.equal((r.body as unknown as { error: string }).error, "ImageTooLargeError");
    // Decoding needs 1 GB (gray) to 4 GB (RGBA): the process must not have grown anywhere near.
    const grown = Deno.memoryUsage().rss - rss;
    assert.ok(grown < 200 * 1024 * 1024, `RSS grew by ${grown} bytes`);
  },
);

hostile(
  "POST /v1/classify answers 413 for a body over the limit that declares its Content-Length",
  async () => {
    const big = new Uint8Array(MAX_BODY + 1);
    assertProblem(
      await post(big, "", { "content-length": String(big.length) }),
      413,
      new RegExp(`larger than the limit of ${MAX_BODY} bytes`),
    );
  },
);

hostile(
  "POST /v1/classify answers 413 for a streamed body over the limit without Content-Length",
  async () => {
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(ctl) {
        if (sent > 4 * MAX_BODY) return ctl.close(); // a well-behaved test stream ends eventually
        sent += 64 * 1024;
        ctl.enqueue(new Uint8Array(64 * 1024));
      },
    });
    const r = await post(stream);
    assertProblem(r, 413, /larger than the limit/);
    assert.ok(sent <= 2 * MAX_BODY, `read ${sent} bytes before refusing`);
  },
);

hostile("POST /v1/classify classifies the first frame of an animated GIF", async () => {
  const r = await post(await fixture("edge/animated.gif"), "?invert=false");
  assert.equal(r.res.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.image, { type: "gif", width: 16, height: 16, inverted: false });
});

hostile("POST /v1/classify classifies a CMYK JPEG", async () => {
  const r = await post(await fixture("edge/cmyk.jpg"));
  assert.equal(r.res.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.image.type, "jpeg");
});

hostile("POST /v1/classify classifies 16-bit PNGs (gray and RGBA)", async () => {
  for (const f of ["edge/gray16.png", "edge/rgba16.png"]) {
    const r = await post(await fixture(f));
    assert.equal(r.res.status, 200, `${f}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.image.type, "png");
  }
});

hostile(
  "POST /v1/classify applies EXIF orientation 6: a stored 48x32 JPEG is seen as 32x48",
  async () => {
    const r = await post(await fixture("edge/exif_orientation_6.jpg"));
    assert.equal(r.res.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.image.width, 32);
    assert.equal(r.body.image.height, 48);
  },
);

hostile("POST /v1/classify sniffs a PNG sent with a lying Content-Type image/jpeg", async () => {
  const r = await post(ordinary, "?alpha=0.5", { "content-type": "image/jpeg" });
  assert.equal(r.res.status, 200);
  assert.deepEqual(r.body.predictions, baseline);
});

const BAD_QUERIES: [string, string, RegExp][] = [
  ["?alpha=0.3", "alpha", /alpha must be one of the shipped widths 0.25, 0.5, 0.75, 1: got "0.3"/],
  ["?alpha=wide", "alpha", /alpha must be one of 0.25, 0.5, 0.75, 1: got "wide"/],
  ["?beta=0", "beta", /beta must be in \(0, 1\]: got "0"/],
  ["?beta=1.5", "beta", /beta must be in \(0, 1\]/],
  [
    "?beta=0.1",
    "beta",
    /beta=0.1 gives 3x3 pixels, below the 9 pixels .*: use beta in \[0.304, 1\]/,
  ],
  ["?beta=NaN", "beta", /beta must be a number in \[0.304, 1\]: got "NaN"/],
  ["?resolution=4000", "resolution", /resolution must be an integer in \[9, 28\]: got "4000"/],
  ["?resolution=20.5", "resolution", /resolution must be an integer in \[9, 28\]/],
  ["?beta=0.5&resolution=14", "beta", /Give beta or resolution, not both/],
  ["?topk=0", "topk", /topk must be an integer in \[1, 10\]: got "0"/],
  ["?topk=11", "topk", /topk must be an integer in \[1, 10\]/],
  ["?backend=cuda", "backend", /backend must be one of ort-wasm: got "cuda"/],
  ["?invert=maybe", "invert", /invert must be one of auto, true, false: got "maybe"/],
  ["?deadline_ms=-5", "deadline_ms", /deadline_ms must be a number of milliseconds/],
  ["?colour=red", "colour", /Unknown query parameter "colour": use alpha, beta, resolution/],
];

hostile(
  "POST /v1/classify answers 400 naming the parameter and its valid values for bad query values",
  async () => {
    for (const [query, param, detail] of BAD_QUERIES) {
      const r = await post(ordinary, query);
      assertProblem(r, 400, detail);
      assert.equal((r.body as unknown as { param: string }).param, param, query);
    }
  },
);
