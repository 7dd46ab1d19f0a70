// Reads a V8 .cpuprofile (node --cpu-prof) and totals self time per function and per file.
interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
}

interface ProfileNode {
  id: number
  callFrame: CallFrame
}

interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

export interface SelfTime {
  name: string
  /** Milliseconds of samples in this function itself (not its callees). */
  ms: number
  /** Share of the busy (non-idle) time. */
  share: number
}

export interface ProfileSummary {
  totalMs: number
  idleMs: number
  gcMs: number
  functions: SelfTime[]
  files: SelfTime[]
}

/** `file:///…/dist/proxy/Session.js` → `dist/proxy/Session.js`; node internals and packages keep a short form. */
function shortUrl(url: string): string {
  if (url === '') return '(native)'
  const dist = url.indexOf('/dist/')
  const modules = url.lastIndexOf('/node_modules/')
  if (modules >= 0) return url.slice(modules + '/node_modules/'.length)
  if (dist >= 0) return url.slice(dist + 1)
  return url.replace(/^file:\/\//, '')
}

export function summarizeCpuProfile(profile: CpuProfile, top = 25): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const selfById = new Map<number, number>()
  // timeDeltas[i] is the time from sample i-1 to sample i: charge it to sample i's function.
  profile.samples.forEach((id, i) => selfById.set(id, (selfById.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
  let totalUs = 0
  let idleUs = 0
  let gcUs = 0
  const fns = new Map<string, number>()
  const files = new Map<string, number>()
  for (const [id, us] of selfById) {
    const frame = byId.get(id)!.callFrame
    totalUs += us
    if (frame.functionName === '(idle)') {
      idleUs += us
      continue
    }
    if (frame.functionName === '(garbage collector)') gcUs += us
    const file = shortUrl(frame.url)
    const name = `${frame.functionName || '(anonymous)'} ${file}${frame.url ? `:${frame.lineNumber + 1}` : ''}`
    fns.set(name, (fns.get(name) ?? 0) + us)
    files.set(file, (files.get(file) ?? 0) + us)
  }
  const busyUs = totalUs - idleUs
  const rank = (m: Map<string, number>): SelfTime[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: us / 1000, share: busyUs > 0 ? us / busyUs : 0 }))
  return { totalMs: totalUs / 1000, idleMs: idleUs / 1000, gcMs: gcUs / 1000, functions: rank(fns), files: rank(files) }
}

export function profileTable(s: ProfileSummary): string {
  const rows = (items: SelfTime[]) => items.map((f) => `| ${f.name.replace(/\|/g, '\\|')} | ${f.ms.toFixed(0)} | ${(f.share * 100).toFixed(1)}% |`)
  return [
    `Sampled ${(s.totalMs / 1000).toFixed(1)} s: idle ${((s.idleMs / s.totalMs) * 100).toFixed(1)}%, garbage collector ${((s.gcMs / Math.max(1, s.totalMs - s.idleMs)) * 100).toFixed(1)}% of busy time.`,
    'V8 samples on wall time: a socket write (`writeBuffer`, `writev`) is a syscall, so its row holds the kernel\'s loopback TCP work and any time the thread waited for a CPU inside it, not JavaScript.',
    '',
    '| function (self time) | ms | share of busy |',
    '|---|---:|---:|',
    ...rows(s.functions),
    '',
    '| file (self time) | ms | share of busy |',
    '|---|---:|---:|',
    ...rows(s.files),
  ].join('\n')
}
