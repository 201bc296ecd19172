/**
 * Optimizers over one flat float32 parameter vector (the trainable weights in `paramInfos`
 * order), so data-parallel workers only exchange gradients and the whole state checkpoints as
 * plain arrays.
 *
 * The seed's 15.7.3 schedule: Adam with step decay (lr x gamma every `step` epochs), then SGD
 * fine-tuning with momentum 0.9 and weight decay 5e-4.
 */

export interface RecipeOptions {
  /** Adam learning rate. */
  lr: number;
  /** Multiply the Adam learning rate by `lrGamma` every `lrStep` epochs. */
  lrStep: number;
  lrGamma: number;
  /** The last `sgdEpochs` epochs of the budget fine-tune with SGD (0: Adam throughout). */
  sgdEpochs: number;
  sgdLr: number;
  sgdMomentum: number;
  sgdWeightDecay: number;
  /** Adam hyper-parameters. */
  beta1: number;
  beta2: number;
  eps: number;
  /** Adam (decoupled-free, L2) weight decay; 0 by default. */
  weightDecay: number;
}

/**
 * The default recipe. Adam at 1e-2: alpha 0.25 from scratch (stem1 plan, 28x28, seed 1) reached
 * 75.32% / 79.41% / 80.51% test accuracy after one epoch at 2e-3 / 5e-3 / 1e-2, and 88.14% after
 * three epochs at 1e-2 against 84.12% at 2e-3 (model/train/runs/ab_*, v1_a025_stem1_28).
 */
export const DEFAULT_RECIPE: RecipeOptions = {
  lr: 1e-2,
  lrStep: 2,
  lrGamma: 0.5,
  sgdEpochs: 0,
  sgdLr: 1e-4,
  sgdMomentum: 0.9,
  sgdWeightDecay: 5e-4,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-7,
  weightDecay: 0,
};

/** The seed's recipe (15.7.3): Adam 0.01, x0.9 every 5 epochs, then SGD 1e-4 / 0.9 / 5e-4. */
export const SEED_RECIPE: RecipeOptions = {
  ...DEFAULT_RECIPE,
  lr: 0.01,
  lrStep: 5,
  lrGamma: 0.9,
  sgdEpochs: 5,
};

export type Phase = "adam" | "sgd";

/** Which optimizer and learning rate run in `epoch` (0-based) of a budget of `epochs`. */
export function schedule(
  r: RecipeOptions,
  epoch: number,
  epochs: number,
): { phase: Phase; lr: number } {
  if (r.sgdEpochs > 0 && epoch >= epochs - r.sgdEpochs) return { phase: "sgd", lr: r.sgdLr };
  return { phase: "adam", lr: r.lr * r.lrGamma ** Math.floor(epoch / r.lrStep) };
}

export class Optimizer {
  readonly size: number;
  m: Float32Array;
  v: Float32Array;
  /** SGD momentum buffer. */
  mom: Float32Array;
  /** Adam steps taken. */
  t = 0;

  constructor(size: number) {
    this.size = size;
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
    this.mom = new Float32Array(size);
  }

  /** One update of `w` in place. */
  step(w: Float32Array, g: Float32Array, r: RecipeOptions, phase: Phase, lr: number): void {
    if (w.length !== this.size || g.length !== this.size) {
      throw new RangeError(
        `Cannot step optimizer as weights and gradients must hold ${this.size} values: got ${w.length}, ${g.length}`,
      );
    }
    if (phase === "sgd") {
      const mu = r.sgdMomentum;
      const wd = r.sgdWeightDecay;
      const mom = this.mom;
      for (let i = 0; i < w.length; i++) {
        const gi = g[i]! + wd * w[i]!;
        const b = mu * mom[i]! + gi;
        mom[i] = b;
        w[i] = w[i]! - lr * b;
      }
      return;
    }
    this.t++;
    const { beta1: b1, beta2: b2, eps, weightDecay: wd } = r;
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    const a = lr * Math.sqrt(c2) / c1;
    const epsHat = eps * Math.sqrt(c2);
    const m = this.m;
    const v = this.v;
    for (let i = 0; i < w.length; i++) {
      const gi = g[i]! + wd * w[i]!;
      const mi = b1 * m[i]! + (1 - b1) * gi;
      const vi = b2 * v[i]! + (1 - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      w[i] = w[i]! - a * mi / (Math.sqrt(vi) + epsHat);
    }
  }
}
