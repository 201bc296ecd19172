import assert from "node:assert/strict";
import { describeLeadingBytes, sniffImageType } from "../../../kernels/image/sniff.ts";
import { readFixture } from "../../fixtures/fixtures.ts";

Deno.test("sniffImageType() names each supported type from the fixture files' magic bytes", async () => {
  const cases: [string, string][] = [
    ["edge/baseline.jpg", "jpeg"],
    ["edge/progressive.jpg", "jpeg"],
    ["edge/cmyk.jpg", "jpeg"],
    ["edge/rgb.png", "png"],
    ["edge/gray16.png", "png"],
    ["edge/animated.gif", "gif"],
    ["edge/lossy.webp", "webp"],
    ["edge/lossless.webp", "webp"],
    ["edge/rgb24.bmp", "bmp"],
    ["edge/rgba32.bmp", "bmp"],
  ];
  for (const [file, type] of cases) {
    assert.equal(sniffImageType(await readFixture(file)), type, file);
  }
});

Deno.test("sniffImageType() returns null for empty, random and text data", async () => {
  for (const file of ["edge/empty.bin", "edge/random.bin", "edge/text.txt"]) {
    assert.equal(sniffImageType(await readFixture(file)), null, file);
  }
});

Deno.test("sniffImageType() ignores a misleading Content-Type: only the bytes count", async () => {
  // The same PNG bytes are a PNG whatever a client claims; a text body with an image name is not.
  const png = await readFixture("edge/rgb.png");
  assert.equal(sniffImageType(png), "png");
  assert.equal(sniffImageType(new TextEncoder().encode("GIF89 is not a gif")), null);
});

Deno.test("sniffImageType() does not take text starting with 'BM' for a bitmap", () => {
  assert.equal(
    sniffImageType(new TextEncoder().encode("BMW 320i, good condition, one owner")),
    null,
  );
});

Deno.test("sniffImageType() needs the whole signature: prefixes of magic bytes are not images", () => {
  assert.equal(sniffImageType(new Uint8Array([0xff, 0xd8])), null);
  assert.equal(sniffImageType(new Uint8Array([0x89, 0x50, 0x4e, 0x47])), null);
  assert.equal(sniffImageType(new TextEncoder().encode("RIFF\0\0\0\0WAVE")), null);
});

Deno.test("describeLeadingBytes() shows the length and the first bytes in hex", () => {
  assert.equal(describeLeadingBytes(new Uint8Array(0)), "an empty body (0 bytes)");
  assert.equal(
    describeLeadingBytes(new Uint8Array([1, 0xab, 3])),
    "3 bytes starting with 01 ab 03",
  );
});
