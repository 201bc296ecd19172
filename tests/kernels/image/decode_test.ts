import assert from "node:assert/strict";
import { type DecodedImage, decodeImage } from "../../../kernels/image/decode.ts";
import {
  ImageTooLargeError,
  UndecodableImageError,
  UnsupportedImageTypeError,
} from "../../../kernels/image/errors.ts";
import { resizeArea } from "../../../kernels/image/resize.ts";
import { readFixture } from "../../fixtures/fixtures.ts";

const decode = async (file: string, opts = {}) => decodeImage(await readFixture(file), opts);

/** RGBA of one pixel. */
const px = (img: DecodedImage, x: number, y: number) =>
  Array.from(img.data.subarray((y * img.width + x) * 4, (y * img.width + x) * 4 + 4));

/** Mean absolute difference over the given channels (default R, G, B) of two same-size images. */
function meanAbsDiff(a: DecodedImage, b: DecodedImage, channels = [0, 1, 2]): number {
  assert.deepEqual([a.width, a.height], [b.width, b.height]);
  let s = 0;
  for (let i = 0; i < a.data.length; i++) {
    if (channels.includes(i % 4)) s += Math.abs(a.data[i]! - b.data[i]!);
  }
  return s / (a.data.length / 4 * channels.length);
}

/** The test card (tests/fixtures/make_fixtures.ts), losslessly stored as RGBA PNG. */
const card = () => decode("edge/rgba.png");

Deno.test("decodeImage() decodes baseline and progressive JPEG close to the lossless original", async () => {
  const ref = await card();
  for (const file of ["edge/baseline.jpg", "edge/progressive.jpg"]) {
    const img = await decode(file);
    assert.equal(img.type, "jpeg");
    assert.ok(meanAbsDiff(img, ref) < 6, `${file}: ${meanAbsDiff(img, ref)}`);
    assert.equal(px(img, 10, 10)[3], 255);
  }
});

Deno.test("decodeImage() decodes a grayscale JPEG to equal R, G and B", async () => {
  const img = await decode("fmnist/jpeg/t10k_00000.jpg");
  assert.deepEqual([img.width, img.height], [28, 28]);
  for (let i = 0; i < img.data.length; i += 4) {
    assert.ok(img.data[i] === img.data[i + 1] && img.data[i] === img.data[i + 2]);
  }
});

Deno.test("decodeImage() decodes a CMYK JPEG (Adobe, inverted) to the right RGB colours", async () => {
  const img = await decode("edge/cmyk.jpg");
  const close = (got: number[], want: number[]) =>
    assert.ok(got.every((v, i) => Math.abs(v - want[i]!) <= 3), `${got} vs ${want}`);
  close(px(img, 4, 4), [255, 0, 0, 255]); // cyan 0, magenta and yellow full: red
  close(px(img, 27, 4), [0, 255, 0, 255]);
  close(px(img, 4, 27), [0, 0, 255, 255]);
  close(px(img, 27, 27), [0, 0, 0, 255]); // black ink only
});

Deno.test("decodeImage() decodes a JPEG much larger than needed at reduced size (DCT scaling)", async () => {
  const bytes = await readFixture("fmnist/photo/t10k_00000.jpg");
  const full = await decodeImage(bytes);
  assert.deepEqual([full.width, full.height], [1024, 1024]);
  const eighth = await decodeImage(bytes, { minSize: { width: 28, height: 28 } });
  assert.deepEqual([eighth.width, eighth.height], [128, 128]);
  assert.deepEqual(eighth.source, { width: 1024, height: 1024, orientation: 1 });
  const half = await decodeImage(bytes, { minSize: { width: 300, height: 300 } });
  assert.deepEqual([half.width, half.height], [512, 512]);
  // At 1/8 each pixel is its 8x8 block's mean: the same as an area resize of the full decode.
  const area = resizeArea(full.data, 1024, 1024, 4, 128, 128);
  let s = 0;
  for (let i = 0; i < area.length; i++) if (i % 4 !== 3) s += Math.abs(area[i]! - eighth.data[i]!);
  assert.ok(s / (128 * 128 * 3) < 2, `mean abs difference ${s / (128 * 128 * 3)}`);
});

Deno.test("decodeImage() never scales a JPEG below the requested size", async () => {
  const img = await decode("edge/baseline.jpg", { minSize: { width: 40, height: 40 } });
  assert.deepEqual([img.width, img.height], [64, 48]);
});

Deno.test("decodeImage() applies EXIF orientation 6: stored top-left ends up top-right", async () => {
  const img = await decode("edge/exif_orientation_6.jpg");
  assert.deepEqual([img.width, img.height], [32, 48]);
  assert.deepEqual(img.source, { width: 48, height: 32, orientation: 6 });
  const [r, g, b] = px(img, 29, 2);
  assert.ok(r! > 200 && g! < 40 && b! < 40, `top-right is red: ${px(img, 29, 2)}`);
  const [r2, g2] = px(img, 2, 2);
  assert.ok(
    Math.abs(r2! - 128) < 10 && Math.abs(g2! - 128) < 10,
    `top-left is gray: ${px(img, 2, 2)}`,
  );
});

Deno.test("decodeImage() decodes 16-bit PNGs to their high bytes", async () => {
  const gray = await decode("edge/gray16.png");
  for (let x = 0; x < 32; x++) assert.deepEqual(px(gray, x, 5), [x * 8, x * 8, x * 8, 255]);
  assert.deepEqual((await decode("edge/rgba16.png")).data, (await card()).data);
});

Deno.test("decodeImage() decodes an Adam7-interlaced PNG to the same pixels as a plain one", async () => {
  assert.deepEqual((await decode("edge/interlaced.png")).data, (await decode("edge/rgb.png")).data);
});

Deno.test("decodeImage() decodes palette PNG with tRNS, and gray+alpha PNG, keeping alpha", async () => {
  const pal = await decode("edge/palette.png");
  assert.deepEqual(px(pal, 0, 0), [255, 0, 0, 255]);
  assert.deepEqual(px(pal, 8, 0), [0, 255, 0, 255]);
  assert.deepEqual(px(pal, 16, 0), [0, 0, 255, 255]);
  assert.equal(px(pal, 24, 0)[3], 0);
  const ga = await decode("edge/gray_alpha.png");
  for (let x = 0; x < 32; x++) assert.deepEqual(px(ga, x, 3), [0, 0, 0, Math.round(255 * x / 31)]);
});

Deno.test("decodeImage() returns the first frame of an animated GIF", async () => {
  const img = await decode("edge/animated.gif");
  assert.deepEqual([img.type, img.width, img.height], ["gif", 16, 16]);
  // Frame 1 is white on the left, frame 2 white on the right.
  assert.deepEqual(px(img, 2, 8), [255, 255, 255, 255]);
  assert.deepEqual(px(img, 13, 8), [0, 0, 0, 255]);
});

Deno.test("decodeImage() decodes WebP: lossless exactly, lossy closely, alpha kept", async () => {
  const ref = await card();
  const lossless = await decode("edge/lossless.webp");
  assert.equal(lossless.type, "webp");
  assert.deepEqual(lossless.data, ref.data);
  // Lossy WebP subsamples chroma 2x2, which blurs the card's 4-pixel blue checker: compare R, G.
  assert.ok(meanAbsDiff(await decode("edge/lossy.webp"), ref, [0, 1]) < 8);
  const alpha = await decode("edge/alpha.webp");
  assert.equal(px(alpha, 5, 5)[3], 255);
  assert.equal(px(alpha, 60, 5)[3], 0);
});

Deno.test("decodeImage() decodes 24-bit bottom-up and 32-bit top-down BMP exactly", async () => {
  const ref = await card();
  assert.deepEqual((await decode("edge/rgb24.bmp")).data, ref.data);
  const rgba = await decode("edge/rgba32.bmp");
  for (let y = 0; y < 48; y += 7) {
    for (let x = 0; x < 64; x += 5) {
      assert.deepEqual(px(rgba, x, y), [...px(ref, x, y).slice(0, 3), x < 32 ? 255 : 0]);
    }
  }
});

Deno.test("decodeImage() refuses empty, random and text bodies as unsupported (415)", async () => {
  for (const file of ["edge/empty.bin", "edge/random.bin", "edge/text.txt"]) {
    await assert.rejects(
      decode(file),
      (e: unknown) => e instanceof UnsupportedImageTypeError && e.status === 415,
    );
  }
});

Deno.test("decodeImage() refuses truncated JPEG and PNG as undecodable (422)", async () => {
  for (const file of ["edge/truncated.jpg", "edge/truncated.png"]) {
    await assert.rejects(
      decode(file),
      (e: unknown) =>
        e instanceof UndecodableImageError && e.status === 422 && e.cause !== undefined,
      file,
    );
  }
});

Deno.test("decodeImage() refuses the 16000x16000 PNG bomb with 413 from the header, before decoding", async () => {
  const bomb = await readFixture("edge/bomb_16000x16000.png");
  await assert.rejects(
    decodeImage(bomb),
    (e: unknown) => e instanceof ImageTooLargeError && e.status === 413,
  );
  // The header alone (no image data) gets the same 413, not a 422: the limit is checked first.
  await assert.rejects(decodeImage(bomb.subarray(0, 33)), ImageTooLargeError);
});

Deno.test("decodeImage() applies a configurable pixel limit", async () => {
  const bytes = await readFixture("edge/rgb.png"); // 64x48 = 3072 pixels
  await assert.rejects(
    decodeImage(bytes, { maxPixels: 3071 }),
    /3072 pixels, above the limit of 3071/,
  );
  assert.equal((await decodeImage(bytes, { maxPixels: 3072 })).width, 64);
  await assert.rejects(decodeImage(bytes, { maxPixels: 0 }), RangeError);
});

Deno.test("decodeImage() turns garbage behind valid headers into 422, and the codecs keep working", async () => {
  for (
    const file of ["edge/baseline.jpg", "edge/rgb.png", "edge/animated.gif", "edge/lossy.webp"]
  ) {
    const bytes = (await readFixture(file)).slice();
    let seed = 3;
    for (let i = 40; i < bytes.length; i++) bytes[i] = (seed = (seed * 69069 + 1) >>> 0) >>> 24;
    try {
      await decodeImage(bytes);
    } catch (e) {
      assert.ok(e instanceof UndecodableImageError, `${file}: ${e}`);
    }
    // After the failure the same codec decodes a good file again.
    assert.ok((await decode(file)).width > 0, file);
  }
});

Deno.test("decodeImage() refuses a BMP variant it does not decode with 415 and says what to send", async () => {
  const bmp = (await readFixture("edge/rgb24.bmp")).slice();
  new DataView(bmp.buffer).setUint16(28, 8, true); // claim 8 bits per pixel (palette)
  await assert.rejects(decodeImage(bmp), /8-bit BMP.*send a 24- or 32-bit uncompressed BMP/);
});

Deno.test("decodeImage() refuses a BMP whose pixel data is cut short with 422", async () => {
  const bmp = await readFixture("edge/rgb24.bmp");
  await assert.rejects(decodeImage(bmp.subarray(0, 2000)), UndecodableImageError);
});

Deno.test("decodeImage() decodes every format with no permission but reading the image", async () => {
  const script = new URL("./no_permissions_check.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--allow-read=tests/fixtures/data", script],
    cwd: new URL("../../../", import.meta.url).pathname,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.match(text, /baseline\.jpg=64x48 cmyk\.jpg=32x32 rgb\.png=64x48 animated\.gif=16x16/);
  assert.match(text, /lossy\.webp=64x48 rgb24\.bmp=64x48/);
});

Deno.test("decodeImage() decodes an ordinary image correctly right after each hostile input", async () => {
  const hostile = [
    "edge/empty.bin",
    "edge/random.bin",
    "edge/text.txt",
    "edge/truncated.jpg",
    "edge/truncated.png",
    "edge/bomb_16000x16000.png",
  ];
  const normal: [string, DecodedImage][] = [];
  for (const f of ["edge/baseline.jpg", "edge/rgb.png", "edge/animated.gif", "edge/lossy.webp"]) {
    normal.push([f, await decode(f)]);
  }
  for (const bad of hostile) {
    for (const [file, want] of normal) {
      await assert.rejects(decode(bad));
      assert.deepEqual((await decode(file)).data, want.data, `${file} after ${bad}`);
    }
  }
});

Deno.test("decodeImage() refuses a JPEG with more scans than the limit (422) before decoding", async () => {
  // progressive.jpg with its last scan repeated 120 times: the kind of file that makes a
  // progressive decoder loop over every block once per scan.
  const jpeg = await readFixture("edge/progressive.jpg");
  let lastSos = -1;
  for (let i = 0; i + 1 < jpeg.length; i++) {
    if (jpeg[i] === 0xff && jpeg[i + 1] === 0xda) lastSos = i;
  }
  const scan = jpeg.subarray(lastSos, jpeg.length - 2); // up to EOI
  const parts = [jpeg.subarray(0, jpeg.length - 2), ...Array(120).fill(scan), jpeg.subarray(-2)];
  const hostile = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((o, p) => (hostile.set(p, o), o + p.length), 0);
  await assert.rejects(
    decodeImage(hostile),
    (e: unknown) =>
      e instanceof UndecodableImageError && e.status === 422 &&
      /has 12\d scans, more than the 100/.test(e.message) &&
      /re-save it as a baseline/.test(e.message),
  );
  await assert.rejects(decodeImage(jpeg, { maxJpegScans: 2 }), /more than the 2 this service/);
  assert.equal((await decodeImage(jpeg)).width, 64);
});
