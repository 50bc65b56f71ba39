// How long the property-based fuzzers run: a bounded number of cases in `npm test`, more with FUZZ_RUNS
// (`npm run fuzz` sets it), and a fixed seed from FUZZ_SEED to replay a failure.
export function fuzzOptions(defaultRuns: number): { numRuns: number; seed?: number } {
  const runs = Number(process.env.FUZZ_RUNS ?? defaultRuns);
  const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
  return { numRuns: Number.isFinite(runs) && runs > 0 ? runs : defaultRuns, ...(seed !== undefined ? { seed } : {}) };
}
