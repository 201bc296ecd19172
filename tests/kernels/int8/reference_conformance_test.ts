import { referenceInt8Kernels } from "../../../kernels/int8/kernel_set.ts";
import { runConformance } from "./conformance.ts";

// For the reference, generated cases compare it with itself; the ONNX node cases are the real check
// here, and the hand-computed tests (requantize_test.ts, conv2d_test.ts) pin its arithmetic.
runConformance({ name: "reference", kernels: referenceInt8Kernels });
