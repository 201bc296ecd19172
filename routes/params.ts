/** Strict query-parameter parsing shared by routes: numbers must be plain decimal literals. */
import { badParameter } from "./problem.ts";

const NUMBER = /^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** Parses a finite decimal number or throws a 400 naming the parameter. */
export function parseNumber(name: string, raw: string, expectation: string): number {
  const v = NUMBER.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isFinite(v)) {
    throw badParameter(name, `${name} must be ${expectation}: got "${raw}".`, expectation);
  }
  return v;
}

export function parseInteger(name: string, raw: string, lo: number, hi: number): number {
  const v = parseNumber(name, raw, `an integer in [${lo}, ${hi}]`);
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw badParameter(name, `${name} must be an integer in [${lo}, ${hi}]: got "${raw}".`, {
      min: lo,
      max: hi,
    });
  }
  return v;
}
