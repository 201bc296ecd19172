/**
 * Batch assembly with augmentation: uint8 NHWC images -> normalized float32 NHWC at the model's
 * resolution.
 *
 * The seed's 15.7.3 list (torchvision) is available as options: horizontal and vertical flips,
 * rotation, translation (RandomAffine), perspective, random erasing and pad-and-crop. All geometric
 * steps are folded into one inverse mapping per image, sampled bilinearly with a zero (background)
 * border, so integer shifts and flips reproduce pixels exactly.
 *
 * One option is the project's own: `resample`, the photo round trip. A product photo reaches the
 * model through a large upscaled image and the server's area downscale (kernels/image/resize.ts),
 * which blurs it by about a pixel; with probability `resample` the source image is bilinearly
 * upscaled to a random side (2x-40x, log-uniform) and area-downscaled back before the other steps.
 */
import type { Dataset } from "./data.ts";
import type { Rng } from "./rng.ts";
import { createAreaPlan } from "../../kernels/image/resize.ts";

export interface AugmentOptions {
  /** Probability of a horizontal flip. */
  hflip: number;
  /** Probability of a vertical flip. */
  vflip: number;
  /** Maximum rotation in degrees (uniform in [-d, d]). */
  rotate: number;
  /** Maximum translation as a fraction of the side (RandomAffine translate). */
  translate: number;
  /** Probability of a random perspective warp (torchvision distortion scale 0.5). */
  perspective: number;
  /** Probability of random erasing (area 2-33%, aspect 0.3-3.3, erased to the mean). */
  erase: number;
  /** Pad-and-crop: integer shift of up to this many pixels (RandomCrop with padding). */
  padCrop: number;
  /** Probability of the photo round trip (bilinear upscale 2x-40x, area downscale back). */
  resample?: number;
}

export const NO_AUGMENT: AugmentOptions = {
  hflip: 0,
  vflip: 0,
  rotate: 0,
  translate: 0,
  perspective: 0,
  erase: 0,
  padCrop: 0,
};

/** The light default: flips and a 2-pixel pad-and-crop. */
export const LIGHT_AUGMENT: AugmentOptions = { ...NO_AUGMENT, hflip: 0.5, padCrop: 2 };

/** The seed's 15.7.3 list, as written there for 32x32 CIFAR-100. */
export const SEED_AUGMENT: AugmentOptions = {
  hflip: 0.1,
  vflip: 0.1,
  rotate: 10,
  translate: 0.1,
  perspective: 0.1,
  erase: 0.1,
  padCrop: 8,
};

/** How a source image is brought to the model's resolution. */
export type FitMode = "pad" | "resize";

export interface BatchOptions {
  resolution: number;
  mean: readonly number[];
  std: readonly number[];
  fit: FitMode;
  augment: AugmentOptions;
}

/** Solves the 8-parameter homography mapping points `from[i]` to `to[i]` (4 pairs). */
function homography(from: number[][], to: number[][]): number[] {
  const a: number[][] = [];
  const b: number[] = [];
  for (let i = 0; i < 4; i++) {
    const [x, y] = from[i]!;
    const [u, v] = to[i]!;
    a.push([x!, y!, 1, 0, 0, 0, -u! * x!, -u! * y!]);
    b.push(u!);
    a.push([0, 0, 0, x!, y!, 1, -v! * x!, -v! * y!]);
    b.push(v!);
  }
  // Gaussian elimination with partial pivoting.
  for (let c = 0; c < 8; c++) {
    let p = c;
    for (let r = c + 1; r < 8; r++) if (Math.abs(a[r]![c]!) > Math.abs(a[p]![c]!)) p = r;
    [a[c], a[p]] = [a[p]!, a[c]!];
    [b[c], b[p]] = [b[p]!, b[c]!];
    for (let r = c + 1; r < 8; r++) {
      const f = a[r]![c]! / a[c]![c]!;
      for (let k = c; k < 8; k++) a[r]![k]! -= f * a[c]![k]!;
      b[r]! -= f * b[c]!;
    }
  }
  const h = new Array<number>(8).fill(0);
  for (let r = 7; r >= 0; r--) {
    let s = b[r]!;
    for (let k = r + 1; k < 8; k++) s -= a[r]![k]! * h[k]!;
    h[r] = s / a[r]![r]!;
  }
  return h;
}

const roundTrips = new Map<string, Float64Array>();
/** The horizontal pass's output, reused across images (grown when a larger image comes). */
let roundTripScratch = new Float64Array(0);

/**
 * The 1-D operator (n x n, row-major: output i, source j) of a bilinear upscale from n to s samples
 * (half-pixel centers, edges clamped: tests/fixtures/make_fixtures.ts's photo upscale) followed by
 * an area downscale from s back to n (the server's resize). Rows sum to 1.
 */
export function roundTripMatrix(n: number, s: number): Float64Array {
  const key = `${n}:${s}`;
  const hit = roundTrips.get(key);
  if (hit) return hit;
  const up = new Float64Array(s * n);
  for (let k = 0; k < s; k++) {
    const f = Math.min(Math.max((k + 0.5) * n / s - 0.5, 0), n - 1);
    const j0 = Math.floor(f), j1 = Math.min(j0 + 1, n - 1), w = f - j0;
    up[k * n + j0]! += 1 - w;
    up[k * n + j1]! += w;
  }
  const plan = createAreaPlan(s, n);
  const m = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < plan.count[i]!; t++) {
      const k = plan.start[i]! + t, wk = plan.weights[plan.offset[i]! + t]!;
      for (let j = 0; j < n; j++) m[i * n + j]! += wk * up[k * n + j]!;
    }
  }
  if (roundTrips.size > 256) roundTrips.clear();
  roundTrips.set(key, m);
  return m;
}

/**
 * Applies the photo round trip to one interleaved H x W x C image: `dst = My * src * Mx^T` per
 * channel, with the operators of `roundTripMatrix` for upscaled sides `sh` and `sw`.
 */
export function roundTripImage(
  src: ArrayLike<number>,
  srcOffset: number,
  h: number,
  w: number,
  c: number,
  sh: number,
  sw: number,
  dst: Float32Array,
): void {
  const my = roundTripMatrix(h, sh), mx = roundTripMatrix(w, sw);
  if (roundTripScratch.length < h * w * c) roundTripScratch = new Float64Array(h * w * c);
  const tmp = roundTripScratch;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) {
        let acc = 0;
        for (let j = 0; j < w; j++) acc += mx[x * w + j]! * src[srcOffset + (y * w + j) * c + ch]!;
        tmp[(y * w + x) * c + ch] = acc;
      }
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) {
        let acc = 0;
        for (let i = 0; i < h; i++) acc += my[y * h + i]! * tmp[(i * w + x) * c + ch]!;
        dst[(y * w + x) * c + ch] = acc;
      }
    }
  }
}

/**
 * Fills `out` (B x R x R x C, float32) and `labels` with the images `indices` of `data`,
 * augmented with `rng` (pass `NO_AUGMENT` for evaluation).
 */
export function makeBatch(
  data: Dataset,
  indices: ArrayLike<number>,
  opts: BatchOptions,
  rng: Rng,
  out: Float32Array,
  labels: Int32Array,
): void {
  const { resolution: R, fit, augment: aug } = opts;
  const { height: H, width: W, channels: C } = data;
  const per = H * W * C;
  const outPer = R * R * C;
  if (out.length < indices.length * outPer || labels.length < indices.length) {
    throw new RangeError(
      `Cannot make batch as the output holds ${out.length} values: ${
        indices.length * outPer
      } needed`,
    );
  }
  const sx = fit === "resize" ? W / R : 1;
  const sy = fit === "resize" ? H / R : 1;
  const cx = (R - 1) / 2;
  const inv255 = 1 / 255;
  const scale = opts.std.map((s) => 1 / s);
  const bias = opts.mean.map((m, c) => -m * scale[c]!);
  const resample = aug.resample ?? 0;
  const photo = resample > 0 ? new Float32Array(per) : undefined;
  for (let b = 0; b < indices.length; b++) {
    const idx = indices[b]!;
    labels[b] = data.labels[idx]!;
    let px: ArrayLike<number> = data.images;
    let src = idx * per;
    const dst = b * outPer;
    if (photo && rng.next() < resample) {
      const f = Math.exp(rng.uniform(Math.log(2), Math.log(40)));
      roundTripImage(px, src, H, W, C, Math.round(H * f), Math.round(W * f), photo);
      px = photo;
      src = 0;
    }
    // Draw this image's transform (inverse map from output to source, centered coordinates).
    let tx = 0;
    let ty = 0;
    if (aug.padCrop > 0) {
      tx += rng.int(2 * aug.padCrop + 1) - aug.padCrop;
      ty += rng.int(2 * aug.padCrop + 1) - aug.padCrop;
    }
    if (aug.translate > 0) {
      tx += Math.round(rng.uniform(-aug.translate, aug.translate) * R);
      ty += Math.round(rng.uniform(-aug.translate, aug.translate) * R);
    }
    const fx = aug.hflip > 0 && rng.next() < aug.hflip ? -1 : 1;
    const fy = aug.vflip > 0 && rng.next() < aug.vflip ? -1 : 1;
    const theta = aug.rotate > 0 ? rng.uniform(-aug.rotate, aug.rotate) * Math.PI / 180 : 0;
    const cos = Math.cos(-theta);
    const sin = Math.sin(-theta);
    let hom: number[] | undefined;
    if (aug.perspective > 0 && rng.next() < aug.perspective) {
      const half = R / 2;
      const d = 0.5 * half;
      const corners = [[-half, -half], [half, -half], [half, half], [-half, half]];
      const moved = corners.map(([x, y]) => [
        x! + Math.sign(-x!) * rng.uniform(0, d),
        y! + Math.sign(-y!) * rng.uniform(0, d),
      ]);
      // The output shows the corners moved inwards: map output points back to the source.
      hom = homography(moved, corners);
    }
    const plain = theta === 0 && hom === undefined;
    for (let y = 0; y < R; y++) {
      for (let x = 0; x < R; x++) {
        let u = fx * (x - cx - tx);
        let v = fy * (y - cx - ty);
        if (!plain) {
          const ru = cos * u - sin * v;
          const rv = sin * u + cos * v;
          u = ru;
          v = rv;
          if (hom) {
            const w = hom[6]! * u + hom[7]! * v + 1;
            const hu = (hom[0]! * u + hom[1]! * v + hom[2]!) / w;
            const hv = (hom[3]! * u + hom[4]! * v + hom[5]!) / w;
            u = hu;
            v = hv;
          }
        }
        const sxp = sx * u + (W - 1) / 2;
        const syp = sy * v + (H - 1) / 2;
        const x0 = Math.floor(sxp);
        const y0 = Math.floor(syp);
        const ax = sxp - x0;
        const ay = syp - y0;
        const o = dst + (y * R + x) * C;
        for (let c = 0; c < C; c++) {
          let acc = 0;
          for (let dy = 0; dy < 2; dy++) {
            const yy = y0 + dy;
            const wy = dy ? ay : 1 - ay;
            if (yy < 0 || yy >= H || wy === 0) continue;
            for (let dx = 0; dx < 2; dx++) {
              const xx = x0 + dx;
              const wx = dx ? ax : 1 - ax;
              if (xx < 0 || xx >= W || wx === 0) continue;
              acc += wx * wy * px[src + (yy * W + xx) * C + c]!;
            }
          }
          out[o + c] = acc * inv255 * scale[c]! + bias[c]!;
        }
      }
    }
    if (aug.erase > 0 && rng.next() < aug.erase) {
      for (let attempt = 0; attempt < 10; attempt++) {
        const area = R * R * rng.uniform(0.02, 0.33);
        const ratio = Math.exp(rng.uniform(Math.log(0.3), Math.log(3.3)));
        const eh = Math.round(Math.sqrt(area * ratio));
        const ew = Math.round(Math.sqrt(area / ratio));
        if (eh >= R || ew >= R || eh < 1 || ew < 1) continue;
        const y0 = rng.int(R - eh + 1);
        const x0 = rng.int(R - ew + 1);
        for (let y = y0; y < y0 + eh; y++) {
          out.fill(0, dst + (y * R + x0) * C, dst + (y * R + x0 + ew) * C);
        }
        break;
      }
    }
  }
}
