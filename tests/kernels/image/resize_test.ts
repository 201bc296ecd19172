import assert from "node:assert/strict";
import { createAreaPlan, resizeArea } from "../../../kernels/image/resize.ts";

/** Seeded uniform samples in 0..255. */
function randomImage(n: number, seed: number): Float64Array {
  return Float64Array.from({ length: n }, () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return (seed >>> 8) % 256;
  });
}

/**
 * Independent 2-D definition: output = integral of the source over the output pixel's footprint
 * divided by its area, summing overlap_x * overlap_y over every source pixel.
 */
function areaReference(
  src: ArrayLike<number>,
  sw: number,
  sh: number,
  dw: number,
  dh: number,
): number[] {
  const out: number[] = [];
  const sx = sw / dw, sy = sh / dh;
  for (let y = 0; y < dh; y++) {
    for (let x = 0; x < dw; x++) {
      let sum = 0;
      for (let j = 0; j < sh; j++) {
        const oy = Math.max(0, Math.min((y + 1) * sy, j + 1) - Math.max(y * sy, j));
        if (oy === 0) continue;
        for (let i = 0; i < sw; i++) {
          const ox = Math.max(0, Math.min((x + 1) * sx, i + 1) - Math.max(x * sx, i));
          sum += ox * oy * src[j * sw + i]!;
        }
      }
      out.push(sum / (sx * sy));
    }
  }
  return out;
}

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, atol: number): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < got.length; i++) {
    if (!(Math.abs(got[i]! - want[i]!) <= atol)) {
      assert.fail(`index ${i}: got ${got[i]}, want ${want[i]} (atol ${atol})`);
    }
  }
}

const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0) / a.length;

Deno.test("resizeArea() keeps a constant image constant at integer, fractional and upscaling ratios", () => {
  const sizes: [number, number, number, number][] = [
    [8, 8, 2, 2],
    [10, 7, 3, 4],
    [97, 61, 28, 28],
    [28, 28, 28, 28],
    [3, 5, 7, 11],
  ];
  for (const [sw, sh, dw, dh] of sizes) {
    const out = resizeArea(new Float32Array(sw * sh * 3).fill(173.25), sw, sh, 3, dw, dh);
    assertClose(out, new Float32Array(dw * dh * 3).fill(173.25), 1e-4);
  }
});

Deno.test("resizeArea() at 2x2 box gives each output the mean of its 2x2 block", () => {
  const src = Uint8Array.from([0, 0, 4, 4, 0, 0, 4, 4, 8, 8, 2, 2, 8, 8, 2, 6]);
  assert.deepEqual(Array.from(resizeArea(src, 4, 4, 1, 2, 2)), [0, 4, 8, 3]);
});

Deno.test("resizeArea() matches the 2-D area integral for fractional ratios (10x7 -> 3x4, 13x9 -> 5x2)", () => {
  for (const [sw, sh, dw, dh] of [[10, 7, 3, 4], [13, 9, 5, 2], [7, 7, 3, 3], [5, 3, 8, 6]]) {
    const src = randomImage(sw! * sh!, sw! * 31 + sh!);
    assertClose(
      resizeArea(src, sw!, sh!, 1, dw!, dh!),
      areaReference(src, sw!, sh!, dw!, dh!),
      1e-3,
    );
  }
});

Deno.test("resizeArea() preserves the image mean at a fractional ratio", () => {
  const src = randomImage(100 * 70, 5);
  const out = resizeArea(src, 100, 70, 1, 28, 28);
  assert.ok(Math.abs(mean(out) - mean(src)) < 1e-3, `${mean(out)} vs ${mean(src)}`);
});

Deno.test("resizeArea() keeps channels apart in interleaved data", () => {
  const src = new Float32Array(6 * 4 * 3);
  for (let i = 0; i < 6 * 4; i++) src.set([10, 20, 30], i * 3);
  const out = resizeArea(src, 6, 4, 3, 4, 3);
  for (let i = 0; i < 12; i++) assertClose(out.subarray(i * 3, i * 3 + 3), [10, 20, 30], 1e-4);
});

Deno.test("resizeArea() reuses a given output buffer and checks its length", () => {
  const out = new Float32Array(4);
  assert.equal(resizeArea(new Uint8Array(16).fill(9), 4, 4, 1, 2, 2, out), out);
  assert.deepEqual(Array.from(out), [9, 9, 9, 9]);
  assert.throws(
    () => resizeArea(new Uint8Array(16), 4, 4, 1, 2, 2, new Float32Array(5)),
    /needs 4/,
  );
});

Deno.test("resizeArea() rejects wrong sizes with the values in the message", () => {
  assert.throws(() => resizeArea(new Uint8Array(15), 4, 4, 1, 2, 2), /15 samples, not 4x4x1 = 16/);
  assert.throws(() => resizeArea(new Uint8Array(16), 4, 4, 1, 0, 2), RangeError);
  assert.throws(() => resizeArea(new Uint8Array(16), 4, 4, 1, 2.5, 2), /integer >= 1: 2.5/);
});

Deno.test("createAreaPlan() gives every destination pixel weights that sum to 1", () => {
  for (const [s, d] of [[4000, 28], [1024, 28], [28, 28], [7, 3], [3, 7]]) {
    const plan = createAreaPlan(s!, d!);
    for (let i = 0; i < d!; i++) {
      let sum = 0;
      for (let k = 0; k < plan.count[i]!; k++) sum += plan.weights[plan.offset[i]! + k]!;
      assert.ok(Math.abs(sum - 1) < 1e-12, `${s}->${d} pixel ${i}: ${sum}`);
    }
  }
});
