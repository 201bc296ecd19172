import assert from "node:assert/strict";
import { applyOrientation } from "../../../kernels/image/orientation.ts";
import type { Orientation } from "../../../kernels/image/probe.ts";

// Stored 3x2 image, one channel:  a b c
//                                 d e f
const stored = Uint8Array.from([1, 2, 3, 4, 5, 6]);

// What a viewer shows for each orientation (EXIF 2.3, TIFF tag 0x0112).
const shown: Record<Orientation, [number, number, number[]]> = {
  1: [3, 2, [1, 2, 3, 4, 5, 6]],
  2: [3, 2, [3, 2, 1, 6, 5, 4]], // mirrored left-right
  3: [3, 2, [6, 5, 4, 3, 2, 1]], // rotated 180
  4: [3, 2, [4, 5, 6, 1, 2, 3]], // mirrored top-bottom
  5: [2, 3, [1, 4, 2, 5, 3, 6]], // transposed
  6: [2, 3, [4, 1, 5, 2, 6, 3]], // rotated 90 clockwise
  7: [2, 3, [6, 3, 5, 2, 4, 1]], // transverse
  8: [2, 3, [3, 6, 2, 5, 1, 4]], // rotated 90 counter-clockwise
};

Deno.test("applyOrientation() shows each of the 8 EXIF orientations as a viewer does", () => {
  for (const [o, [w, h, data]] of Object.entries(shown)) {
    const r = applyOrientation(stored, 3, 2, Number(o) as Orientation, 1);
    assert.deepEqual([r.width, r.height, Array.from(r.data)], [w, h, data], `orientation ${o}`);
  }
});

Deno.test("applyOrientation() moves whole RGBA pixels, not single samples", () => {
  const rgba = Uint8Array.from({ length: 2 * 1 * 4 }, (_, i) => i); // 2x1: [0..3], [4..7]
  const r = applyOrientation(rgba, 2, 1, 6);
  assert.deepEqual([r.width, r.height, Array.from(r.data)], [1, 2, [0, 1, 2, 3, 4, 5, 6, 7]]);
  const m = applyOrientation(rgba, 2, 1, 2);
  assert.deepEqual(Array.from(m.data), [4, 5, 6, 7, 0, 1, 2, 3]);
});

Deno.test("applyOrientation() rejects data whose length does not match the size", () => {
  assert.throws(() => applyOrientation(stored, 2, 2, 6, 1), /6 samples, not 2x2x1/);
});
