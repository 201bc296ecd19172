import assert from "node:assert/strict";
import {
  channelStats,
  loadCifarDataset,
  loadFolderDataset,
  loadIdxDataset,
  parseCifar,
  parseIdx,
} from "../../../model/train/data.ts";
import { decodeForTraining } from "../../../model/train/decode.ts";
import {
  LIGHT_AUGMENT,
  makeBatch,
  NO_AUGMENT,
  roundTripImage,
  SEED_AUGMENT,
} from "../../../model/train/augment.ts";
import { resizeArea } from "../../../kernels/image/resize.ts";
import { Rng } from "../../../model/train/rng.ts";
import { encodePng, PNG_GRAY, PNG_RGB } from "../../fixtures/encode_png.ts";

function idx(dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const v = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

Deno.test("parseIdx() reads dims and data and refuses a non-uint8 header", () => {
  const r = parseIdx(idx([2, 3], Uint8Array.of(1, 2, 3, 4, 5, 6)));
  assert.deepEqual(r.dims, [2, 3]);
  assert.deepEqual([...r.data], [1, 2, 3, 4, 5, 6]);
  assert.throws(() => parseIdx(Uint8Array.of(0, 0, 0x0d, 1, 0, 0, 0, 1, 0)), TypeError);
  assert.throws(() => parseIdx(idx([4], Uint8Array.of(1))), RangeError);
});

Deno.test("loadIdxDataset() reads gzipped and plain IDX files from a directory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const px = Uint8Array.from({ length: 3 * 4 }, (_, i) => i * 10);
    const gz = async (b: Uint8Array) =>
      new Uint8Array(
        await new Response(
          new Blob([b as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
            new CompressionStream("gzip"),
          ),
        )
          .arrayBuffer(),
      );
    await Deno.writeFile(`${dir}/train-images-idx3-ubyte.gz`, await gz(idx([3, 2, 2], px)));
    await Deno.writeFile(`${dir}/train-labels-idx1-ubyte`, idx([3], Uint8Array.of(2, 0, 1)));
    await Deno.writeFile(
      `${dir}/t10k-images-idx3-ubyte`,
      idx([1, 2, 2], Uint8Array.of(9, 9, 9, 9)),
    );
    await Deno.writeFile(`${dir}/t10k-labels-idx1-ubyte.gz`, await gz(idx([1], Uint8Array.of(7))));
    const d = await loadIdxDataset(dir);
    assert.equal(d.train.n, 3);
    assert.equal(d.train.height, 2);
    assert.deepEqual([...d.train.images], [...px]);
    assert.deepEqual([...d.train.labels], [2, 0, 1]);
    assert.deepEqual([...d.test.labels], [7]);
    assert.equal(d.train.labelNames[0], "T-shirt/top");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CIFAR-10 and CIFAR-100 binary records become NHWC images with labels", async () => {
  const rec = (label: number[], r: number, g: number, b: number) => {
    const out = new Uint8Array(label.length + 3072);
    out.set(label);
    out.fill(r, label.length, label.length + 1024);
    out.fill(g, label.length + 1024, label.length + 2048);
    out.fill(b, label.length + 2048);
    return out;
  };
  const p = parseCifar(rec([3], 10, 20, 30), 1);
  assert.deepEqual([...p.labels], [3]);
  assert.deepEqual([...p.images.subarray(0, 6)], [10, 20, 30, 10, 20, 30]);
  assert.throws(() => parseCifar(new Uint8Array(100), 1), RangeError);

  const dir = await Deno.makeTempDir();
  try {
    // CIFAR-100 layout: coarse label, fine label; fine_label_names.txt.
    await Deno.writeFile(
      `${dir}/train.bin`,
      new Uint8Array([...rec([1, 42], 1, 2, 3), ...rec([0, 7], 4, 5, 6)]),
    );
    await Deno.writeFile(`${dir}/test.bin`, rec([2, 99], 7, 8, 9));
    await Deno.writeTextFile(
      `${dir}/fine_label_names.txt`,
      Array.from({ length: 100 }, (_, i) => `c${i}`).join("\n"),
    );
    const d = await loadCifarDataset(dir);
    assert.equal(d.name, "cifar-100");
    assert.deepEqual([...d.train.labels], [42, 7]);
    assert.deepEqual([...d.test.labels], [99]);
    assert.equal(d.train.channels, 3);
    assert.equal(d.train.labelNames.length, 100);
    assert.deepEqual([...d.test.images.subarray(0, 3)], [7, 8, 9]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadFolderDataset() decodes PNG class folders through kernels/image, gray or RGB", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (
      const [split, cls, v] of [["train", "bag", 200], ["train", "shoe", 50], [
        "test",
        "shoe",
        60,
      ]] as const
    ) {
      await Deno.mkdir(`${dir}/${split}/${cls}`, { recursive: true });
      await Deno.writeFile(
        `${dir}/${split}/${cls}/a.png`,
        encodePng({
          width: 3,
          height: 2,
          colorType: PNG_GRAY,
          bitDepth: 8,
          samples: new Uint8Array(6).fill(v),
        }),
      );
    }
    await Deno.mkdir(`${dir}/test/bag`, { recursive: true });
    const rgb = new Uint8Array(18);
    for (let i = 0; i < 6; i++) rgb.set([255, 0, 0], i * 3);
    await Deno.writeFile(
      `${dir}/test/bag/red.png`,
      encodePng({ width: 3, height: 2, colorType: PNG_RGB, bitDepth: 8, samples: rgb }),
    );
    const gray = await loadFolderDataset(dir, 1, decodeForTraining);
    assert.deepEqual(gray.train.labelNames, ["bag", "shoe"]);
    assert.deepEqual([...gray.train.labels], [0, 1]);
    assert.equal(gray.train.width, 3);
    assert.equal(gray.train.images[0], 200);
    assert.equal(gray.train.images[6], 50);
    assert.deepEqual([...gray.test.labels], [0, 1]);
    assert.equal(gray.test.images[0], Math.round(0.299 * 255));
    const color = await loadFolderDataset(dir, 3, decodeForTraining);
    assert.deepEqual([...color.test.images.subarray(0, 3)], [255, 0, 0]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const tinySet = () => ({
  images: Uint8Array.from({ length: 2 * 4 * 4 }, (_, i) => (i * 7) % 256),
  labels: Uint8Array.of(4, 9),
  n: 2,
  height: 4,
  width: 4,
  channels: 1,
  labelNames: [],
});

Deno.test("makeBatch() without augmentation normalizes pixels exactly and pads to a larger side", () => {
  const d = tinySet();
  const out = new Float32Array(2 * 16);
  const labels = new Int32Array(2);
  makeBatch(
    d,
    [1, 0],
    { resolution: 4, mean: [0.5], std: [0.25], fit: "pad", augment: NO_AUGMENT },
    new Rng(1),
    out,
    labels,
  );
  assert.deepEqual([...labels], [9, 4]);
  for (let i = 0; i < 16; i++) {
    assert.ok(Math.abs(out[i]! - (d.images[16 + i]! / 255 - 0.5) / 0.25) < 1e-5);
  }
  const padded = new Float32Array(36);
  makeBatch(
    d,
    [0],
    { resolution: 6, mean: [0], std: [1], fit: "pad", augment: NO_AUGMENT },
    new Rng(1),
    padded,
    labels,
  );
  assert.equal(padded[0], 0);
  assert.ok(Math.abs(padded[7]! - d.images[0]! / 255) < 1e-6, "image starts at (1, 1)");
});

Deno.test("makeBatch() horizontal flips mirror rows exactly and the seed's augmentations stay finite", () => {
  const d = tinySet();
  const out = new Float32Array(16);
  const labels = new Int32Array(1);
  makeBatch(
    d,
    [0],
    { resolution: 4, mean: [0], std: [1], fit: "pad", augment: { ...NO_AUGMENT, hflip: 1 } },
    new Rng(1),
    out,
    labels,
  );
  for (let y = 0; y < 4; y++) {
    for (let x = 0; x < 4; x++) {
      assert.ok(Math.abs(out[y * 4 + x]! - d.images[y * 4 + 3 - x]! / 255) < 1e-6);
    }
  }
  for (
    const aug of [LIGHT_AUGMENT, SEED_AUGMENT, {
      ...SEED_AUGMENT,
      perspective: 1,
      erase: 1,
      rotate: 30,
    }]
  ) {
    const o = new Float32Array(2 * 16);
    makeBatch(
      d,
      [0, 1],
      { resolution: 4, mean: [0.3], std: [0.3], fit: "resize", augment: aug },
      new Rng(2),
      o,
      new Int32Array(2),
    );
    assert.ok(o.every(Number.isFinite));
  }
});

Deno.test("channelStats() gives the mean and standard deviation of pixels in [0, 1]", () => {
  const s = channelStats({
    ...tinySet(),
    images: Uint8Array.of(0, 255, 0, 255),
    n: 1,
    height: 2,
    width: 2,
  });
  assert.ok(Math.abs(s.mean[0]! - 0.5) < 1e-9);
  assert.ok(Math.abs(s.std[0]! - 0.5) < 1e-9);
});

Deno.test("roundTripImage() equals an explicit bilinear upscale then the server's area downscale", () => {
  const h = 7, w = 5, c = 2;
  const rng = new Rng(3);
  const src = Float32Array.from({ length: h * w * c }, () => rng.int(256));
  for (const [sh, sw] of [[14, 10], [61, 37], [280, 200]] as const) {
    // Explicit: the fixture script's bilinear formula (without its rounding), then resizeArea.
    const big = new Float64Array(sh * sw * c);
    for (let y = 0; y < sh; y++) {
      const fy = Math.min(Math.max((y + 0.5) * h / sh - 0.5, 0), h - 1);
      const y0 = Math.floor(fy), y1 = Math.min(y0 + 1, h - 1), wy = fy - y0;
      for (let x = 0; x < sw; x++) {
        const fx = Math.min(Math.max((x + 0.5) * w / sw - 0.5, 0), w - 1);
        const x0 = Math.floor(fx), x1 = Math.min(x0 + 1, w - 1), wx = fx - x0;
        for (let ch = 0; ch < c; ch++) {
          const at = (yy: number, xx: number) => src[(yy * w + xx) * c + ch]!;
          big[(y * sw + x) * c + ch] = (at(y0, x0) * (1 - wx) + at(y0, x1) * wx) * (1 - wy) +
            (at(y1, x0) * (1 - wx) + at(y1, x1) * wx) * wy;
        }
      }
    }
    const expected = resizeArea(big, sw, sh, c, w, h);
    const got = new Float32Array(h * w * c);
    roundTripImage(src, 0, h, w, c, sh, sw, got);
    for (let i = 0; i < got.length; i++) {
      assert.ok(Math.abs(got[i]! - expected[i]!) < 1e-3, `${sh}x${sw} sample ${i}`);
    }
  }
  // A constant image stays constant (every operator row sums to 1).
  const flat = new Float32Array(h * w).fill(200);
  const out = new Float32Array(h * w);
  roundTripImage(flat, 0, h, w, 1, 100, 71, out);
  for (const v of out) assert.ok(Math.abs(v - 200) < 1e-3);
});

Deno.test("makeBatch() resample: p 0 leaves batches and the random stream unchanged, p 1 blurs", () => {
  const d = tinySet();
  const labels = new Int32Array(2);
  const opts = (resample: number) => ({
    resolution: 4,
    mean: [0],
    std: [1],
    fit: "pad" as const,
    augment: { ...LIGHT_AUGMENT, resample },
  });
  const a = new Float32Array(32), b = new Float32Array(32), blurred = new Float32Array(32);
  const ra = new Rng(5), rb = new Rng(5);
  makeBatch(d, [0, 1], { ...opts(0), augment: LIGHT_AUGMENT }, ra, a, labels);
  makeBatch(d, [0, 1], opts(0), rb, b, labels);
  assert.deepEqual(a, b);
  assert.equal(ra.next(), rb.next(), "no extra draws when the option is off");
  makeBatch(
    d,
    [0, 1],
    { ...opts(1), augment: { ...NO_AUGMENT, resample: 1 } },
    new Rng(5),
    blurred,
    labels,
  );
  const plain = new Float32Array(32);
  makeBatch(d, [0, 1], { ...opts(0), augment: NO_AUGMENT }, new Rng(5), plain, labels);
  assert.notDeepEqual(blurred, plain);
  const mean = (x: Float32Array) => x.reduce((s, v) => s + v, 0) / x.length;
  assert.ok(Math.abs(mean(blurred) - mean(plain)) < 0.05, "the round trip keeps the image mean");
});
