export interface Timing {
  /** Median over rounds of the mean time per operation, in microseconds. */
  medianUs: number
  minUs: number
}

// Written by every operation: module state V8 must keep, so the timed work cannot be optimized away.
const sink: unknown[] = [undefined]

/**
 * Times `op(i)` for i = 0 … iterations-1, `rounds` times after one warm-up round (JIT, caches), and returns
 * the median and the best round's µs per operation.
 */
export function timePerOp(op: (i: number) => unknown, iterations: number, rounds = 7): Timing {
  for (let i = 0; i < iterations; i++) sink[0] = op(i)
  const perOp: number[] = []
  for (let r = 0; r < rounds; r++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < iterations; i++) sink[0] = op(i)
    perOp.push(Number(process.hrtime.bigint() - start) / 1000 / iterations)
  }
  perOp.sort((a, b) => a - b)
  return { medianUs: perOp[perOp.length >> 1], minUs: perOp[0] }
}
