import assert from "node:assert/strict";
import { UndecodableImageError, UnsupportedImageTypeError } from "../../../kernels/image/errors.ts";
import { countJpegScans, exifOrientation, probeImageSize } from "../../../kernels/image/probe.ts";
import { readFixture } from "../../fixtures/fixtures.ts";

const SIZES: [string, string, number, number, number][] = [
  ["edge/baseline.jpg", "jpeg", 64, 48, 1],
  ["edge/progressive.jpg", "jpeg", 64, 48, 1],
  ["edge/cmyk.jpg", "jpeg", 32, 32, 1],
  ["edge/exif_orientation_6.jpg", "jpeg", 48, 32, 6],
  ["fmnist/photo/t10k_00000.jpg", "jpeg", 1024, 1024, 1],
  ["edge/rgb.png", "png", 64, 48, 1],
  ["edge/gray16.png", "png", 32, 16, 1],
  ["edge/interlaced.png", "png", 64, 48, 1],
  ["edge/bomb_16000x16000.png", "png", 16000, 16000, 1],
  ["edge/animated.gif", "gif", 16, 16, 1],
  ["edge/lossy.webp", "webp", 64, 48, 1],
  ["edge/lossless.webp", "webp", 64, 48, 1],
  ["edge/alpha.webp", "webp", 64, 48, 1],
  ["edge/rgb24.bmp", "bmp", 64, 48, 1],
  ["edge/rgba32.bmp", "bmp", 64, 48, 1],
];

Deno.test("probeImageSize() reads type, size and orientation of every format from the header", async () => {
  for (const [file, type, width, height, orientation] of SIZES) {
    assert.deepEqual(
      probeImageSize(await readFixture(file)),
      { type, width, height, orientation },
      file,
    );
  }
});

Deno.test("probeImageSize() reports 16000x16000 for the PNG bomb from its first 24 bytes", async () => {
  const bomb = await readFixture("edge/bomb_16000x16000.png");
  // Only signature + IHDR length/type/size: no image data at all, so nothing can have been decoded.
  const p = probeImageSize(bomb.subarray(0, 24));
  assert.deepEqual(p, { type: "png", width: 16000, height: 16000, orientation: 1 });
});

Deno.test("probeImageSize() reads WebP's VP8, VP8L and VP8X headers", async () => {
  const chunk = async (f: string) =>
    new TextDecoder().decode((await readFixture(f)).subarray(12, 16));
  assert.equal(await chunk("edge/lossy.webp"), "VP8 ");
  assert.equal(await chunk("edge/lossless.webp"), "VP8L");
  assert.equal(await chunk("edge/alpha.webp"), "VP8X");
});

Deno.test("probeImageSize() reads EXIF orientation 6 from APP1 and 1 from a JPEG without EXIF", async () => {
  assert.equal(probeImageSize(await readFixture("edge/exif_orientation_6.jpg")).orientation, 6);
  assert.equal(probeImageSize(await readFixture("fmnist/jpeg/t10k_00000.jpg")).orientation, 1);
});

Deno.test("exifOrientation() ignores malformed EXIF (wrong byte order, out-of-range value, short)", () => {
  const tiff = (order: "II" | "MM", value: number) => {
    const b = new Uint8Array(26);
    const dv = new DataView(b.buffer);
    const le = order === "II";
    b.set([order.charCodeAt(0), order.charCodeAt(1)]);
    dv.setUint16(2, 42, le);
    dv.setUint32(4, 8, le);
    dv.setUint16(8, 1, le);
    dv.setUint16(10, 0x0112, le);
    dv.setUint16(12, 3, le);
    dv.setUint32(14, 1, le);
    dv.setUint16(18, value, le);
    return b;
  };
  assert.equal(exifOrientation(tiff("II", 8)), 8);
  assert.equal(exifOrientation(tiff("MM", 3)), 3);
  assert.equal(exifOrientation(tiff("MM", 9)), 1);
  assert.equal(exifOrientation(tiff("MM", 6).subarray(0, 20)), 1);
  const bad = tiff("II", 6);
  bad[0] = 0x41;
  assert.equal(exifOrientation(bad), 1);
});

Deno.test("probeImageSize() rejects empty, random and text data as unsupported (415)", async () => {
  for (const file of ["edge/empty.bin", "edge/random.bin", "edge/text.txt"]) {
    const bytes = await readFixture(file);
    assert.throws(() => probeImageSize(bytes), UnsupportedImageTypeError, file);
  }
});

Deno.test("probeImageSize() never throws anything but the image errors on any prefix of a fixture", async () => {
  for (const [file] of SIZES) {
    const bytes = await readFixture(file);
    const full = probeImageSize(bytes);
    for (let n = 0; n <= Math.min(bytes.length, 300); n++) {
      try {
        // A prefix that holds the header must give the same answer as the whole file.
        assert.deepEqual(probeImageSize(bytes.subarray(0, n)), full, `${file} prefix ${n}`);
      } catch (e) {
        assert.ok(
          e instanceof UndecodableImageError || e instanceof UnsupportedImageTypeError,
          `${file} prefix ${n}: ${e}`,
        );
      }
    }
  }
});

Deno.test("probeImageSize() survives random bytes behind every magic number", () => {
  const magics = [
    [0xff, 0xd8, 0xff],
    [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
    [0x47, 0x49, 0x46, 0x38, 0x39, 0x61],
    [0x52, 0x49, 0x46, 0x46, 1, 2, 3, 4, 0x57, 0x45, 0x42, 0x50],
    [0x42, 0x4d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 40, 0, 0, 0],
  ];
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
  let ok = 0;
  for (const magic of magics) {
    for (let k = 0; k < 400; k++) {
      const bytes = new Uint8Array(magic.length + (k % 97));
      bytes.set(magic);
      for (let i = magic.length; i < bytes.length; i++) bytes[i] = rand();
      try {
        const p = probeImageSize(bytes);
        assert.ok(p.width > 0 && p.height > 0 && p.orientation >= 1 && p.orientation <= 8);
        ok++;
      } catch (e) {
        assert.ok(
          e instanceof UndecodableImageError || e instanceof UnsupportedImageTypeError,
          String(e),
        );
      }
    }
  }
  assert.ok(ok > 0, "some random headers parse, so the success path was exercised");
});

Deno.test("probeImageSize() rejects a JPEG whose scan starts before any frame header (422)", () => {
  const bytes = new Uint8Array([0xff, 0xd8, 0xff, 0xda, 0, 8, 1, 1, 0, 0, 63, 0]);
  assert.throws(() => probeImageSize(bytes), UndecodableImageError);
});

Deno.test("probeImageSize() rejects a PNG whose IHDR says 0x0 (422)", async () => {
  const bytes = (await readFixture("edge/rgb.png")).slice();
  bytes.fill(0, 16, 24);
  assert.throws(() => probeImageSize(bytes), /size of 0x0/);
});

Deno.test("probeImageSize() counts a GIF frame that extends past the logical screen", async () => {
  const gif = (await readFixture("edge/animated.gif")).slice();
  // Find the first image descriptor (0x2c after the header and colour table) and widen its frame.
  const flags = gif[10]!;
  let i = 13 + (flags & 0x80 ? 3 * (2 << (flags & 7)) : 0);
  while (gif[i] === 0x21) {
    i += 2;
    while (gif[i] !== 0) i += gif[i]! + 1;
    i++;
  }
  assert.equal(gif[i], 0x2c);
  new DataView(gif.buffer).setUint16(i + 5, 60000, true);
  assert.deepEqual(probeImageSize(gif), { type: "gif", width: 60000, height: 16, orientation: 1 });
});

Deno.test("probeImageSize() reads a top-down BMP's negative height as a positive size", async () => {
  const bmp = await readFixture("edge/rgba32.bmp");
  assert.equal(new DataView(bmp.buffer).getInt32(22, true), -48);
  assert.equal(probeImageSize(bmp).height, 48);
});

Deno.test("countJpegScans() counts SOS segments, skipping entropy-coded data and APP payloads", async () => {
  assert.equal(countJpegScans(await readFixture("edge/baseline.jpg")), 1);
  assert.equal(countJpegScans(await readFixture("edge/cmyk.jpg")), 1);
  const progressive = await readFixture("edge/progressive.jpg");
  const scans = countJpegScans(progressive);
  assert.ok(scans > 1 && scans <= 20, `${scans}`);
  // An APP1 payload holding SOS-like bytes (as an EXIF thumbnail would) does not count.
  const app = new Uint8Array([0xff, 0xe1, 0, 8, 0xff, 0xda, 0xff, 0xda, 0xff, 0xda]);
  const withApp = new Uint8Array(progressive.length + app.length);
  withApp.set(progressive.subarray(0, 2));
  withApp.set(app, 2);
  withApp.set(progressive.subarray(2), 2 + app.length);
  assert.equal(countJpegScans(withApp), scans);
});

Deno.test("countJpegScans() terminates with a count on every prefix and on random data", async () => {
  const bytes = await readFixture("edge/progressive.jpg");
  for (let n = 0; n <= bytes.length; n += 7) {
    const c = countJpegScans(bytes.subarray(0, n));
    assert.ok(Number.isInteger(c) && c >= 0);
  }
  let seed = 11;
  for (let k = 0; k < 200; k++) {
    const b = Uint8Array.from({ length: 300 }, () => (seed = (seed * 69069 + 1) >>> 0) >>> 24);
    b.set([0xff, 0xd8, 0xff]);
    assert.ok(countJpegScans(b) >= 0);
  }
});
