import assert from "node:assert/strict";
import {
  buildSpec,
  makeDivisible,
  resolutionLimits,
  resolveStridePlan,
  v1Channels,
} from "../../model/spec.ts";

Deno.test("the cifar plan runs the first conv and block 2 at stride 1, so 32x32 ends at 4x4", () => {
  assert.deepEqual(resolveStridePlan("mobilenet_v1", "cifar"), [
    1,
    1,
    1,
    1,
    2,
    1,
    2,
    1,
    1,
    1,
    1,
    1,
    2,
    1,
  ]);
  const spec = buildSpec({ stridePlan: "cifar", resolution: 32 });
  const lastConv = spec.layers.filter((l) => l.kind === "conv").at(-1)!;
  assert.deepEqual(lastConv.outShape, [1024, 4, 4]);
});

Deno.test("the imagenet plan takes 224x224 to 7x7 and imagenet_stem1 takes 28x28 to 2x2", () => {
  const a = buildSpec({ resolution: 224 }).layers.filter((l) => l.kind === "conv").at(-1)!;
  assert.deepEqual(a.outShape, [1024, 7, 7]);
  const b = buildSpec({ resolution: 28, stridePlan: "imagenet_stem1" }).layers.filter((l) =>
    l.kind === "conv"
  )
    .at(-1)!;
  assert.deepEqual(b.outShape, [1024, 2, 2]);
});

Deno.test("V1 channel rounding is max(8, int(c * alpha))", () => {
  assert.equal(v1Channels(32, 0.25), 8);
  assert.equal(v1Channels(64, 0.1), 8);
  assert.equal(v1Channels(1024, 0.75), 768);
  assert.equal(v1Channels(32, 0.3), 9);
});

Deno.test("V2/V3 channel rounding goes to a multiple of 8, never below 90%", () => {
  assert.equal(makeDivisible(32 * 0.35), 16);
  assert.equal(makeDivisible(16 * 0.5), 8);
  assert.equal(makeDivisible(1280 * 1.4), 1792);
  assert.equal(makeDivisible(20), 24); // 16 would be 80% of 20
});

Deno.test("V2 blocks with equal shapes carry a residual from their first layer", () => {
  const spec = buildSpec({ arch: "mobilenet_v2" });
  const residual = spec.layers.filter((l) => l.kind === "conv" && l.residualFrom);
  assert.equal(residual.length, 10); // 1 + 2 + 3 + 2 + 2 in stages 2..6
});

Deno.test("beta scales the base resolution and resolution limits follow the stride plan", () => {
  assert.equal(buildSpec({ beta: 0.5 }).resolution, 112);
  assert.equal(
    buildSpec({ beta: 0.5, baseResolution: 28, stridePlan: "imagenet_stem1" }).resolution,
    14,
  );
  assert.deepEqual(resolutionLimits(resolveStridePlan("mobilenet_v1", "imagenet")), {
    min: 17,
    max: 1024,
  });
  assert.throws(
    () => buildSpec({ resolution: 16 }),
    /resolution must be an integer in \[17, 1024\]/,
  );
});

Deno.test("buildSpec() rejects unknown plans and malformed stride lists", () => {
  assert.throws(() => buildSpec({ stridePlan: [2, 2] }), /must list 14 strides/);
  assert.throws(() => buildSpec({ stridePlan: Array(14).fill(3) }), /must be 1 or 2/);
  assert.throws(() => buildSpec({ alpha: 0 }), /alpha must be in \(0, 1.5\]/);
});

Deno.test("layer shapes chain: each layer's input is the previous layer's output", () => {
  for (
    const arch of [
      "mobilenet_v1",
      "mobilenet_v2",
      "mobilenet_v3_large",
      "mobilenet_v3_small",
    ] as const
  ) {
    const { layers } = buildSpec({ arch, alpha: 0.75, resolution: 160 });
    for (let i = 1; i < layers.length; i++) {
      assert.deepEqual(layers[i]!.inShape, layers[i - 1]!.outShape, `${arch} ${layers[i]!.name}`);
    }
    assert.equal(new Set(layers.map((l) => l.name)).size, layers.length, `${arch} names unique`);
  }
});
