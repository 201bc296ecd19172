import assert from "node:assert/strict";
import { decodeImage } from "../../../kernels/image/decode.ts";
import { ImageTooLargeError, UnsupportedImageTypeError } from "../../../kernels/image/errors.ts";
import {
  preprocessImage,
  type PreprocessOptions,
  shouldInvert,
} from "../../../kernels/image/preprocess.ts";
import { labelledFixtures, readFixture } from "../../fixtures/fixtures.ts";

/** Identity normalization, so tensor values are pixel / 255. */
const RAW: PreprocessOptions = { resolution: 28, channels: 1, mean: [0], std: [1], invert: false };

const pre = async (file: string, opts: Partial<PreprocessOptions> = {}) =>
  preprocessImage(await readFixture(file), { ...RAW, ...opts });

const meanAbs = (a: Float32Array, b: Float32Array) => {
  assert.equal(a.length, b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
};

Deno.test("preprocessImage() turns a 28x28 PNG into a [1,1,28,28] tensor equal to pixel / 255", async () => {
  const file = "fmnist/png/t10k_00000.png";
  const r = await pre(file);
  assert.deepEqual(r.shape, [1, 1, 28, 28]);
  assert.equal(r.tensor.length, 784);
  assert.deepEqual(r.source, { type: "png", width: 28, height: 28, orientation: 1 });
  const img = await decodeImage(await readFixture(file));
  for (let i = 0; i < 784; i++) assert.ok(Math.abs(r.tensor[i]! - img.data[4 * i]! / 255) < 1e-6);
  assert.ok(r.timing.decode >= 0 && r.timing.preprocess >= 0);
});

Deno.test("preprocessImage() keeps values in [0, 1] with identity normalization on every format", async () => {
  for (
    const file of [
      "fmnist/jpeg/t10k_00001.jpg",
      "fmnist/photo/t10k_00001.jpg",
      "edge/cmyk.jpg",
      "edge/lossy.webp",
      "edge/rgb24.bmp",
      "edge/animated.gif",
      "edge/rgba16.png",
    ]
  ) {
    for (const channels of [1, 3] as const) {
      const r = await pre(file, { channels, invert: "auto" });
      assert.deepEqual(r.shape, [1, channels, 28, 28], file);
      assert.ok(r.tensor.every((v) => v >= -1e-6 && v <= 1 + 1e-6), `${file} ${channels}`);
    }
  }
});

Deno.test("preprocessImage() normalizes per channel as (x / 255 - mean) / std", async () => {
  const raw = await pre("edge/rgb.png", { channels: 3 });
  const mean = [0.5, 0.25, 0.125], std = [0.5, 2, 0.25];
  const r = await pre("edge/rgb.png", { channels: 3, mean, std });
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < 784; i++) {
      const want = (raw.tensor[c * 784 + i]! - mean[c]!) / std[c]!;
      assert.ok(Math.abs(r.tensor[c * 784 + i]! - want) < 1e-5);
    }
  }
});

Deno.test("preprocessImage() lays out RGB as NCHW planes and gray as BT.601 luma of them", async () => {
  const rgb = await pre("edge/rgb.png", { channels: 3, fit: "stretch" });
  const gray = await pre("edge/rgb.png", { channels: 1, fit: "stretch" });
  // The card's red ramps left to right, green top to bottom: check the planes' directions.
  assert.ok(rgb.tensor[27]! > rgb.tensor[0]! + 0.8, "R plane increases along x");
  assert.ok(rgb.tensor[784 + 27 * 28]! > rgb.tensor[784]! + 0.8, "G plane increases along y");
  for (let i = 0; i < 784; i++) {
    const luma = 0.299 * rgb.tensor[i]! + 0.587 * rgb.tensor[784 + i]! +
      0.114 * rgb.tensor[1568 + i]!;
    assert.ok(Math.abs(gray.tensor[i]! - luma) < 1.5 / 255, `pixel ${i}`);
  }
});

Deno.test("preprocessImage() composites alpha onto white", async () => {
  // Black ink whose alpha ramps 0..1 left to right: onto white it reads 1 - alpha.
  const r = await pre("edge/gray_alpha.png", { resolution: 32 });
  for (let x = 0; x < 32; x++) assert.ok(Math.abs(r.tensor[5 * 32 + x]! - (1 - x / 31)) < 1 / 255);
  // The transparent right half of alpha.webp turns white.
  const w = await pre("edge/alpha.webp", { channels: 3, fit: "stretch" });
  for (let c = 0; c < 3; c++) assert.ok(w.tensor[c * 784 + 14 * 28 + 27]! > 0.99);
});

Deno.test("preprocessImage() auto polarity: Fashion-MNIST originals are not inverted", async () => {
  for (const kind of ["png", "jpeg"] as const) {
    for (const { file } of await labelledFixtures(kind)) {
      assert.equal((await pre(file, { invert: "auto" })).inverted, false, file);
    }
  }
});

Deno.test("preprocessImage() auto polarity detects the inverted phone photos and restores the original", async () => {
  const photos = (await labelledFixtures("photo")).slice(0, 20);
  assert.equal(photos.length, 20);
  for (const { file } of photos) {
    const photo = await pre(file, { invert: "auto" });
    assert.equal(photo.inverted, true, file);
    assert.deepEqual(photo.source, { type: "jpeg", width: 1024, height: 1024, orientation: 1 });
    assert.deepEqual(photo.decoded, { width: 128, height: 128 }, "reduced-size JPEG decode");
    const original = await pre(file.replace("photo", "png").replace(".jpg", ".png"));
    const d = meanAbs(photo.tensor, original.tensor);
    assert.ok(d < 0.07, `${file}: mean abs difference ${d}`);
  }
});

Deno.test("preprocessImage() invert true and false override the automatic rule", async () => {
  const file = "fmnist/png/t10k_00000.png";
  const plain = await pre(file, { invert: false });
  const inv = await pre(file, { invert: true });
  assert.equal(inv.inverted, true);
  for (let i = 0; i < 784; i++) assert.ok(Math.abs(inv.tensor[i]! - (1 - plain.tensor[i]!)) < 1e-6);
  const photo = await pre("fmnist/photo/t10k_00000.jpg", { invert: false });
  assert.equal(photo.inverted, false);
});

Deno.test("shouldInvert() inverts exactly when the border ring's mean luma is above 127.5", () => {
  const side = 28; // ring width round(28 / 14) = 2
  const img = (border: number, centre: number) => {
    const a = new Float32Array(side * side);
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const edge = x < 2 || y < 2 || x >= side - 2 || y >= side - 2;
        a[y * side + x] = edge ? border : centre;
      }
    }
    return a;
  };
  assert.equal(shouldInvert(img(250, 0), side, 1), true);
  assert.equal(shouldInvert(img(5, 255), side, 1), false);
  assert.equal(shouldInvert(img(128, 0), side, 1), true);
  assert.equal(shouldInvert(img(127, 255), side, 1), false);
});

Deno.test("preprocessImage() applies EXIF orientation before resizing", async () => {
  const r = await pre("edge/exif_orientation_6.jpg", {
    channels: 3,
    fit: "stretch",
    resolution: 16,
  });
  assert.deepEqual(r.source, { type: "jpeg", width: 32, height: 48, orientation: 6 });
  // The red block (stored top-left) is displayed top-right.
  const red = (x: number, y: number) => r.tensor[y * 16 + x]! - r.tensor[256 + y * 16 + x]!;
  assert.ok(red(15, 0) > 0.5, `top-right red ${red(15, 0)}`);
  assert.ok(Math.abs(red(0, 0)) < 0.1, `top-left gray ${red(0, 0)}`);
});

Deno.test("preprocessImage() pads a non-square image with its own border colour by default", async () => {
  // 32x48 displayed -> 16x24 inside a 24x24 square, 4 columns of padding each side.
  const r = await pre("edge/exif_orientation_6.jpg", { resolution: 24 });
  for (let y = 0; y < 24; y++) {
    for (const x of [0, 3, 20, 23]) assert.ok(Math.abs(r.tensor[y * 24 + x]! - 128 / 255) < 0.05);
  }
  const crop = await pre("edge/exif_orientation_6.jpg", {
    resolution: 24,
    fit: "crop",
    channels: 3,
  });
  assert.deepEqual(crop.shape, [1, 3, 24, 24]);
});

Deno.test("preprocessImage() passes the pixel limit to the decoder (413 before decoding)", async () => {
  await assert.rejects(pre("edge/rgb.png", { maxPixels: 1000 }), ImageTooLargeError);
  await assert.rejects(
    pre("edge/bomb_16000x16000.png"),
    (e: unknown) => e instanceof ImageTooLargeError && e.status === 413,
  );
  await assert.rejects(pre("edge/text.txt"), UnsupportedImageTypeError);
});

Deno.test("preprocessImage() rejects bad options with RangeError naming the valid values", async () => {
  const bytes = await readFixture("edge/rgb.png");
  const bad: [Partial<PreprocessOptions>, RegExp][] = [
    [{ resolution: 0 }, /integer in 1\.\.4096/],
    [{ channels: 2 as 1 }, /one of 1, 3/],
    [{ channels: 3, mean: [0, 0] }, /1 or 3 values/],
    [{ std: [0] }, /non-zero/],
    [{ fit: "cover" as "pad" }, /one of pad, stretch, crop/],
  ];
  for (const [opts, message] of bad) {
    await assert.rejects(preprocessImage(bytes, { ...RAW, ...opts }), message);
  }
});
