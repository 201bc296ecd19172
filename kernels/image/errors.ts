/**
 * Errors of the image pipeline. Each carries the HTTP status the edge maps it to and a message that
 * says what the caller should change; routes turn them into problem+json (RFC 9457) without parsing
 * the message.
 *
 * @module
 */

/** Media types the pipeline decodes, in the order error messages list them. */
export const SUPPORTED_IMAGE_TYPES = ["jpeg", "png", "gif", "webp", "bmp"] as const;

/** One of {@link SUPPORTED_IMAGE_TYPES}. */
export type ImageType = typeof SUPPORTED_IMAGE_TYPES[number];

/** Default pixel limit: 40 megapixels (a 7,300 x 5,500 photo; ~160 MB as RGBA8). */
export const DEFAULT_MAX_PIXELS = 40_000_000;

/**
 * The image's width x height exceeds the pixel limit; raised from the header, before decoding.
 * Maps to 413 Content Too Large.
 */
export class ImageTooLargeError extends RangeError {
  override readonly name = "ImageTooLargeError";
  readonly status = 413 as const;
  readonly width: number;
  readonly height: number;
  readonly pixels: number;
  readonly maxPixels: number;

  constructor(width: number, height: number, maxPixels: number) {
    const pixels = width * height;
    super(
      `Cannot decode a ${width}x${height} image as it has ${pixels} pixels, above the limit of ` +
        `${maxPixels}: send an image of at most ${maxPixels} pixels (width x height), ` +
        `e.g. downscaled to ${suggestSize(width, height, maxPixels)}`,
    );
    this.width = width;
    this.height = height;
    this.pixels = pixels;
    this.maxPixels = maxPixels;
  }
}

/**
 * The bytes are not one of the supported image formats (sniffed by magic bytes, whatever the
 * Content-Type said), or a variant of one the decoders do not handle. Maps to 415.
 */
export class UnsupportedImageTypeError extends TypeError {
  override readonly name = "UnsupportedImageTypeError";
  readonly status = 415 as const;
  readonly supported: readonly ImageType[] = SUPPORTED_IMAGE_TYPES;

  /**
   * @param what what was found, e.g. "35 bytes starting with 54 68 69 73" or "an 8-bit BMP".
   * @param advice what to send instead; defaults to the list of supported types.
   */
  constructor(what: string, advice = `send one of ${SUPPORTED_IMAGE_TYPES.join(", ")}`) {
    super(`Cannot decode ${what} as it is not a supported image type: ${advice}`);
  }
}

/**
 * The bytes look like a supported format but cannot be decoded: truncated, corrupt, or rejected by
 * the codec. Maps to 422 Unprocessable Content.
 */
export class UndecodableImageError extends TypeError {
  override readonly name = "UndecodableImageError";
  readonly status = 422 as const;
  readonly type: ImageType | null;

  /**
   * @param reason why, completing "Cannot decode the png data as ...".
   * @param options `cause`: the codec's error; `advice`: what to send instead (default: a complete,
   *   uncorrupted file of the type).
   */
  constructor(
    type: ImageType | null,
    reason: string,
    options?: { cause?: unknown; advice?: string },
  ) {
    const advice = options?.advice ??
      `send a complete, uncorrupted ${type ? type.toUpperCase() : "image"} file`;
    super(
      `Cannot decode the ${type ?? "image"} data as ${reason}: ${advice}`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.type = type;
  }
}

/** Any error of this module, for `instanceof` checks at the HTTP edge. */
export type ImageError = ImageTooLargeError | UnsupportedImageTypeError | UndecodableImageError;

/** True for the three image errors; they all carry `status`. */
export function isImageError(error: unknown): error is ImageError {
  return error instanceof ImageTooLargeError || error instanceof UnsupportedImageTypeError ||
    error instanceof UndecodableImageError;
}

function suggestSize(width: number, height: number, maxPixels: number): string {
  const scale = Math.sqrt(maxPixels / (width * height));
  return `${Math.max(1, Math.floor(width * scale))}x${Math.max(1, Math.floor(height * scale))}`;
}
