import assert from "node:assert/strict";
import {
  DEFAULT_MAX_PIXELS,
  ImageTooLargeError,
  isImageError,
  SUPPORTED_IMAGE_TYPES,
  UndecodableImageError,
  UnsupportedImageTypeError,
} from "../../../kernels/image/errors.ts";

Deno.test("ImageTooLargeError carries status 413 and names the pixel count and the limit", () => {
  const e = new ImageTooLargeError(16000, 16000, DEFAULT_MAX_PIXELS);
  assert.equal(e.status, 413);
  assert.equal(e.name, "ImageTooLargeError");
  assert.ok(e instanceof RangeError);
  assert.equal(e.pixels, 256_000_000);
  assert.match(e.message, /16000x16000/);
  assert.match(e.message, /256000000 pixels/);
  assert.match(e.message, /limit of 40000000/);
  assert.match(e.message, /downscaled to 6324x6324/); // 6324^2 <= 40M < 6325^2
});

Deno.test("UnsupportedImageTypeError carries status 415 and lists every supported type", () => {
  const e = new UnsupportedImageTypeError("35 bytes starting with 54 68");
  assert.equal(e.status, 415);
  assert.ok(e instanceof TypeError);
  assert.deepEqual([...e.supported], ["jpeg", "png", "gif", "webp", "bmp"]);
  for (const t of SUPPORTED_IMAGE_TYPES) assert.ok(e.message.includes(t), t);
});

Deno.test("UndecodableImageError carries status 422, the type and the codec's error as cause", () => {
  const cause = new Error("png: failed to decode (-8)");
  const e = new UndecodableImageError("png", "the png decoder failed", { cause });
  assert.equal(e.status, 422);
  assert.equal(e.type, "png");
  assert.equal(e.cause, cause);
  assert.match(e.message, /send a complete, uncorrupted PNG file/);
});

Deno.test("isImageError() recognises the three image errors and nothing else", () => {
  assert.ok(isImageError(new ImageTooLargeError(2, 2, 1)));
  assert.ok(isImageError(new UnsupportedImageTypeError("x")));
  assert.ok(isImageError(new UndecodableImageError(null, "x")));
  assert.ok(!isImageError(new TypeError("x")));
  assert.ok(!isImageError("413"));
});
