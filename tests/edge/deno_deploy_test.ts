import assert from "node:assert/strict";
import { checkDeploy } from "../../edge/check_deploy.ts";

const manifest = new URL("../../model/artifacts/manifest.json", import.meta.url);
const missing = await Deno.stat(manifest).then(
  () => null,
  () => "model/artifacts/ has no manifest",
);

Deno.test({
  name: `the Deno Deploy entry classifies a fixture with only --allow-net --allow-read=<repo>${
    missing ? ` (skipped: ${missing})` : ""
  }`,
  ignore: missing !== null,
  async fn() {
    const r = await checkDeploy();
    assert.deepEqual(r.command.slice(1, 4), ["run", "--allow-net", r.command[3]]);
    assert.match(r.command[3]!, /^--allow-read=\//);
    assert.ok(!r.command.some((a) => /^--allow-(env|write|run|ffi|sys|all)|^-A$/.test(a)));
    assert.equal(r.classify.status, 200);
    assert.ok(r.classify.top.length > 0);
    assert.equal(r.cost.status, 200);
    assert.ok(r.cost.macs > 0);
    assert.equal(r.page, 200);
  },
});
