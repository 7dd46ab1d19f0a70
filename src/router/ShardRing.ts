// The deterministic hash ring. consistent-hash places control points with Math.random() unless given
// them, so every point here comes from sha256(`<seed>/<shard name>#<i>`): the ring depends only on the shard
// map's content, and every process, before and after a restart, routes every key identically.
// Version 1 (an on-disk contract; changing any of this moves keys):
//   position of point i of shard S = first 4 bytes of sha256(`${seed}/${S}#${i}`), big-endian, mod 100003;
//   a position drawn by several shards belongs to the one with the lowest tie rank, the first 4 bytes of
//   sha256(`${seed}@${position}/${S}`) (then the name, in UTF-16 code units): the outcome does not depend on
//   the order of the shards in the file, adding a shard moves keys only to the new shard, and no shard is
//   favoured (a rule such as "first name wins" hands one shard every tie: +4% of the ring at 4096 points);
//   a key is the canonical string (KeyEncoding), placed by the library's own string hash.
import { createHash } from 'node:crypto'
import ConsistentHash from 'consistent-hash'

export interface RingOptions {
  version: 1
  pointsPerShard: number
  seed: string
}

/** Positions on the version-1 ring (the library's default range, fixed here so a new default moves nothing). */
export const RING_POSITIONS = 100003
// consistent-hash 1.2.2 places a key at (pjw24(key) << 5) % range, pjw24 being a 24-bit string hash.
const KEY_HASH_VALUES = 2 ** 24
const KEY_HASH_SHIFT = 32

function pointPosition(seed: string, shardName: string, i: number): number {
  return createHash('sha256').update(`${seed}/${shardName}#${i}`).digest().readUInt32BE(0) % RING_POSITIONS
}

function tieRank(seed: string, position: number, shardName: string): number {
  return createHash('sha256').update(`${seed}@${position}/${shardName}`).digest().readUInt32BE(0)
}

export class ShardRing {
  readonly shardNames: string[]
  readonly options: Readonly<RingOptions>
  private readonly ring = new ConsistentHash({ range: RING_POSITIONS })
  private readonly indexByName = new Map<string, number>()
  /** Distinct point positions, ascending, and the shard index owning each. */
  private readonly points: number[]
  private readonly pointOwners: number[]

  constructor(shardNames: string[], opts: RingOptions) {
    if (opts.version !== 1) throw new Error(`unsupported ring version ${String(opts.version)}`)
    if (shardNames.length === 0) throw new Error('a ring needs at least one shard')
    if (!Number.isInteger(opts.pointsPerShard) || opts.pointsPerShard < 1) {
      throw new Error(`points per shard must be a positive integer, not ${opts.pointsPerShard}`)
    }
    this.shardNames = [...shardNames]
    this.options = { ...opts }
    shardNames.forEach((name, i) => {
      if (this.indexByName.has(name)) throw new Error(`duplicate shard name "${name}"`)
      this.indexByName.set(name, i)
    })
    const owner = new Map<number, string>()
    const sorted = [...shardNames].sort()
    for (const name of sorted) {
      for (let i = 0; i < opts.pointsPerShard; i++) {
        const position = pointPosition(opts.seed, name, i)
        const held = owner.get(position)
        if (held === undefined || (held !== name && tieRank(opts.seed, position, name) < tieRank(opts.seed, position, held))) {
          owner.set(position, name)
        }
      }
    }
    const byShard = new Map<string, number[]>(sorted.map((name) => [name, []]))
    for (const [position, name] of owner) byShard.get(name)!.push(position)
    // The library maps a duplicated position to the last node added; owner already holds each position once.
    for (const [name, positions] of byShard) if (positions.length > 0) this.ring.add(name, 0, positions)
    this.points = [...owner.keys()].sort((a, b) => a - b)
    this.pointOwners = this.points.map((p) => this.indexByName.get(owner.get(p)!)!)
  }

  /** Index into shardNames of the shard owning a canonical key (KeyEncoding.canonicalKey). */
  shardFor(canonical: string): number {
    return this.indexByName.get(this.ring.get(canonical) as string)!
  }

  /** For each ring position, the index of the shard owning keys placed there (the next point clockwise). */
  positionOwners(): Int32Array {
    const owners = new Int32Array(RING_POSITIONS)
    let next = 0
    for (let position = 0; position < RING_POSITIONS; position++) {
      while (next < this.points.length && this.points[next] < position) next++
      owners[position] = this.pointOwners[next < this.points.length ? next : 0]
    }
    return owners
  }

  /** Share of the key space each shard owns, assuming keys hash uniformly (index as shardNames). */
  shares(): number[] {
    const shares = new Array<number>(this.shardNames.length).fill(0)
    const owners = this.positionOwners()
    const weights = positionWeights()
    for (let p = 0; p < RING_POSITIONS; p++) shares[owners[p]] += weights[p]
    return shares
  }
}

let weights: Float64Array | undefined

/** Fraction of all key hashes that land on each ring position (≈ 1/RING_POSITIONS each, exactly computed). */
export function positionWeights(): Float64Array {
  if (weights) return weights
  weights = new Float64Array(RING_POSITIONS)
  // h ↦ 32h mod R is a bijection on residues; residue c is hit by every h ≡ c (mod R) below 2^24.
  for (let c = 0; c < RING_POSITIONS; c++) {
    const hashes = c < KEY_HASH_VALUES ? Math.floor((KEY_HASH_VALUES - 1 - c) / RING_POSITIONS) + 1 : 0
    weights[(c * KEY_HASH_SHIFT) % RING_POSITIONS] = hashes / KEY_HASH_VALUES
  }
  return weights
}
