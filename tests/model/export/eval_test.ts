import assert from "node:assert/strict";
import { budgetNote } from "../../../model/export/eval.ts";

Deno.test("budgetNote() flags a stage stopped before the epochs its command asks for", () => {
  assert.equal(
    budgetNote({ epochs: 2, command: "deno task train --alpha 1.0 --epochs 4 --lr 1e-2" }),
    " (stopped after 2 of the 4 epochs its command asks for; run it with `--epochs 2` to reproduce)",
  );
  // The trainer's own quoted form (`deno run ... '--epochs' '4'`).
  assert.match(budgetNote({ epochs: 1, command: "train.ts '--epochs' '3'" }), /1 of the 3/);
  assert.equal(budgetNote({ epochs: 6, command: "deno task train --epochs 6" }), "");
  assert.equal(budgetNote({ epochs: 2, command: "deno task train" }), "");
  // A snapshot stage wrote its checkpoint's weights mid-epoch: not a stopped budget.
  assert.match(
    budgetNote({ epochs: 0, command: "deno task train --epochs 1 --snapshot" }),
    /--snapshot`: the weights its checkpoint held part-way through an epoch/,
  );
});
