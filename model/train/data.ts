/**
 * Dataset loaders for training: Fashion-MNIST / MNIST IDX files (optionally gzipped), the
 * CIFAR-10/100 binary format, and folder-per-class image directories.
 *
 * Every loader returns the same thing: uint8 pixels in NHWC order plus one label per image.
 */

export interface Dataset {
  /** Pixels, NHWC, uint8. */
  images: Uint8Array;
  labels: Uint8Array;
  n: number;
  height: number;
  width: number;
  channels: number;
  labelNames: string[];
}

export interface DataSplits {
  train: Dataset;
  test: Dataset;
  name: string;
}

export const FASHION_MNIST_LABELS = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

export const DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

async function readMaybeGzip(path: string): Promise<Uint8Array> {
  const bytes = await Deno.readFile(path);
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) return bytes;
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function firstExisting(paths: string[]): Promise<string> {
  for (const p of paths) {
    try {
      await Deno.stat(p);
      return p;
    } catch {
      // try the next spelling
    }
  }
  throw new TypeError(`Cannot load dataset as none of these files exists: ${paths.join(", ")}`);
}

/** Parses an IDX file (http://yann.lecun.com/exdb/mnist/): uint8 data, big-endian dims. */
export function parseIdx(bytes: Uint8Array): { dims: number[]; data: Uint8Array } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 || view.getUint16(0) !== 0 || bytes[2] !== 0x08) {
    throw new TypeError(
      `Cannot parse IDX file as it must start with 00 00 08 (uint8 data): current header is ${
        Array.from(bytes.subarray(0, 4)).join(",")
      }`,
    );
  }
  const rank = bytes[3]!;
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i));
  const start = 4 + 4 * rank;
  const size = dims.reduce((a, b) => a * b, 1);
  if (bytes.length < start + size) {
    throw new RangeError(
      `Cannot parse IDX file as dims [${dims}] need ${
        start + size
      } bytes: file has ${bytes.length}`,
    );
  }
  return { dims, data: bytes.subarray(start, start + size) };
}

async function loadIdxPair(dir: string, prefix: string, names: string[]): Promise<Dataset> {
  const imgPath = await firstExisting([
    `${dir}/${prefix}-images-idx3-ubyte.gz`,
    `${dir}/${prefix}-images-idx3-ubyte`,
    `${dir}/${prefix}-images.idx3-ubyte`,
  ]);
  const lblPath = await firstExisting([
    `${dir}/${prefix}-labels-idx1-ubyte.gz`,
    `${dir}/${prefix}-labels-idx1-ubyte`,
    `${dir}/${prefix}-labels.idx1-ubyte`,
  ]);
  const img = parseIdx(await readMaybeGzip(imgPath));
  const lbl = parseIdx(await readMaybeGzip(lblPath));
  if (img.dims.length !== 3 || lbl.dims.length !== 1 || img.dims[0] !== lbl.dims[0]) {
    throw new TypeError(
      `Cannot load IDX dataset as images [${img.dims}] and labels [${lbl.dims}] do not match`,
    );
  }
  return {
    images: img.data,
    labels: lbl.data,
    n: img.dims[0]!,
    height: img.dims[1]!,
    width: img.dims[2]!,
    channels: 1,
    labelNames: names,
  };
}

/** Fashion-MNIST (or MNIST) from a directory of IDX files, gzipped or not. */
export async function loadIdxDataset(
  dir = DEFAULT_FASHION_MNIST_DIR,
  labelNames = FASHION_MNIST_LABELS,
): Promise<DataSplits> {
  return {
    name: "fashion-mnist",
    train: await loadIdxPair(dir, "train", labelNames),
    test: await loadIdxPair(dir, "t10k", labelNames),
  };
}

/**
 * Decodes CIFAR binary records: CIFAR-10 `<label><3072 bytes>`, CIFAR-100
 * `<coarse><fine><3072 bytes>`; pixels as three 32x32 planes (R, G, B), converted to NHWC.
 */
export function parseCifar(
  bytes: Uint8Array,
  labelBytes: 1 | 2,
): { images: Uint8Array; labels: Uint8Array } {
  const rec = labelBytes + 3072;
  if (bytes.length % rec !== 0) {
    throw new RangeError(
      `Cannot parse CIFAR file as its size must be a multiple of ${rec}: current size is ${bytes.length}`,
    );
  }
  const n = bytes.length / rec;
  const images = new Uint8Array(n * 3072);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * rec;
    labels[i] = bytes[o + labelBytes - 1]!;
    const px = o + labelBytes;
    for (let p = 0; p < 1024; p++) {
      images[i * 3072 + p * 3] = bytes[px + p]!;
      images[i * 3072 + p * 3 + 1] = bytes[px + 1024 + p]!;
      images[i * 3072 + p * 3 + 2] = bytes[px + 2048 + p]!;
    }
  }
  return { images, labels };
}

async function readLines(path: string): Promise<string[] | undefined> {
  try {
    return (await Deno.readTextFile(path)).split("\n").map((s) => s.trim()).filter((s) => s);
  } catch {
    return undefined;
  }
}

async function concatFiles(paths: string[]): Promise<Uint8Array> {
  const parts = await Promise.all(paths.map((p) => Deno.readFile(p)));
  const out = new Uint8Array(parts.reduce((a, b) => a + b.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * CIFAR-10 (`data_batch_1..5.bin`, `test_batch.bin`, `batches.meta.txt`) or CIFAR-100
 * (`train.bin`, `test.bin`, `fine_label_names.txt`) from the binary distribution's directory.
 */
export async function loadCifarDataset(dir: string): Promise<DataSplits> {
  let isC100 = false;
  try {
    await Deno.stat(`${dir}/train.bin`);
    isC100 = true;
  } catch {
    // CIFAR-10 layout
  }
  const labelBytes = isC100 ? 2 : 1;
  const trainFiles = isC100
    ? [`${dir}/train.bin`]
    : [1, 2, 3, 4, 5].map((i) => `${dir}/data_batch_${i}.bin`);
  const testFiles = [isC100 ? `${dir}/test.bin` : `${dir}/test_batch.bin`];
  const tr = parseCifar(await concatFiles(trainFiles), labelBytes);
  const te = parseCifar(await concatFiles(testFiles), labelBytes);
  const classes = isC100 ? 100 : 10;
  const names =
    (await readLines(isC100 ? `${dir}/fine_label_names.txt` : `${dir}/batches.meta.txt`)) ??
      Array.from({ length: classes }, (_, i) => `class_${i}`);
  const mk = (d: { images: Uint8Array; labels: Uint8Array }): Dataset => ({
    images: d.images,
    labels: d.labels,
    n: d.labels.length,
    height: 32,
    width: 32,
    channels: 3,
    labelNames: names.slice(0, classes),
  });
  return { name: isC100 ? "cifar-100" : "cifar-10", train: mk(tr), test: mk(te) };
}

/** A decoder from encoded image bytes to pixels with `channels` channels (1 gray, 3 RGB). */
export type ImageDecoder = (
  bytes: Uint8Array,
  channels: number,
) => Promise<{ width: number; height: number; data: Uint8Array }>;

const IMAGE_EXT = /\.(png|jpe?g|gif|webp|bmp)$/i;

async function loadFolderSplit(
  dir: string,
  classes: string[],
  channels: number,
  size: { h: number; w: number } | undefined,
  decode: ImageDecoder,
): Promise<Dataset> {
  const items: { data: Uint8Array; label: number }[] = [];
  let h = size?.h ?? 0;
  let w = size?.w ?? 0;
  for (let c = 0; c < classes.length; c++) {
    const files: string[] = [];
    for await (const e of Deno.readDir(`${dir}/${classes[c]}`)) {
      if (e.isFile && IMAGE_EXT.test(e.name)) files.push(e.name);
    }
    files.sort();
    for (const f of files) {
      const img = await decode(await Deno.readFile(`${dir}/${classes[c]}/${f}`), channels);
      if (h === 0) [h, w] = [img.height, img.width];
      if (img.height !== h || img.width !== w) {
        throw new RangeError(
          `Cannot load ${dir}/${
            classes[c]
          }/${f} as all images must be ${w}x${h}: it is ${img.width}x${img.height}`,
        );
      }
      items.push({ data: img.data, label: c });
    }
  }
  const images = new Uint8Array(items.length * h * w * channels);
  const labels = new Uint8Array(items.length);
  items.forEach((it, i) => {
    images.set(it.data, i * h * w * channels);
    labels[i] = it.label;
  });
  return { images, labels, n: items.length, height: h, width: w, channels, labelNames: classes };
}

async function subdirs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.isDirectory) out.push(e.name);
  return out.sort();
}

/**
 * A folder-per-class dataset: `<dir>/train/<class>/*.png` and `<dir>/test/<class>/*.png`
 * (class names are the sorted subfolder names of `train/`). All images must share one size.
 */
export async function loadFolderDataset(
  dir: string,
  channels: number,
  decode: ImageDecoder,
): Promise<DataSplits> {
  const classes = await subdirs(`${dir}/train`);
  if (classes.length === 0) {
    throw new TypeError(`Cannot load folder dataset as ${dir}/train has no class subfolders`);
  }
  const train = await loadFolderSplit(`${dir}/train`, classes, channels, undefined, decode);
  const test = await loadFolderSplit(
    `${dir}/test`,
    classes,
    channels,
    { h: train.height, w: train.width },
    decode,
  );
  return { name: `folder:${dir}`, train, test };
}

/** Mean and standard deviation of the pixels scaled to [0, 1], per channel. */
export function channelStats(d: Dataset): { mean: number[]; std: number[] } {
  const c = d.channels;
  const sum = new Float64Array(c);
  const sq = new Float64Array(c);
  const px = d.images;
  for (let i = 0; i < px.length; i++) {
    const v = px[i]! / 255;
    sum[i % c]! += v;
    sq[i % c]! += v * v;
  }
  const count = px.length / c;
  const mean = Array.from(sum, (s) => s / count);
  const std = Array.from(sq, (s, i) => Math.sqrt(Math.max(s / count - mean[i]! ** 2, 1e-12)));
  return { mean, std };
}

/** The first `n` images (or all) of a dataset, sharing memory. */
export function takeFirst(d: Dataset, n: number): Dataset {
  const m = Math.min(n, d.n);
  const per = d.height * d.width * d.channels;
  return { ...d, n: m, images: d.images.subarray(0, m * per), labels: d.labels.subarray(0, m) };
}
