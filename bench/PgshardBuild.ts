import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, symlink } from 'node:fs/promises'
import { join } from 'node:path'

const REPO = join(import.meta.dirname, '..')

export interface PgshardBuild {
  /** bin/pgshard of the build: the command users run (node with the proxy's memory settings). */
  bin: string
  /** What was built: a commit, or the working tree. */
  source: string
}

/**
 * The pgshard the bench runs. 'head' compiles the last commit in a directory of its own, so a result belongs to
 * a commit even while the working tree is being edited (its node_modules is the repo's, by a symlink);
 * 'worktree' runs the repo's dist/ as `npm run build` left it.
 */
export async function buildPgshard(from: 'head' | 'worktree', dir: string): Promise<PgshardBuild> {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: REPO, encoding: 'utf8' }).trim()
  const commit = git('rev-parse', '--short=12', 'HEAD')
  if (from === 'worktree') {
    if (!existsSync(join(REPO, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first')
    const dirty = git('status', '--porcelain', '--', 'src').split('\n').filter((l) => l.length > 0).length
    return { bin: join(REPO, 'bin', 'pgshard'), source: `working tree on ${commit}${dirty > 0 ? ` (${dirty} changed files in src/)` : ''}` }
  }
  await mkdir(dir, { recursive: true })
  const archive = spawnSync('sh', ['-c', `git archive HEAD src types bin package.json tsconfig.json tsconfig.build.json | tar -x -C '${dir}'`], {
    cwd: REPO,
    encoding: 'utf8',
  })
  if (archive.status !== 0) throw new Error(`git archive failed: ${archive.stderr}`)
  await symlink(join(REPO, 'node_modules'), join(dir, 'node_modules'))
  // Type errors do not stop tsc from emitting; they are shown, and the build runs as emitted.
  const tsc = spawnSync(join(REPO, 'node_modules', '.bin', 'tsc'), ['-p', join(dir, 'tsconfig.build.json')], { encoding: 'utf8', timeout: 300_000 })
  if (!existsSync(join(dir, 'dist', 'cli', 'main.js'))) throw new Error(`tsc emitted no dist/cli/main.js: ${tsc.stdout}${tsc.stderr}`)
  if (tsc.status !== 0) process.stderr.write(`tsc reported errors in commit ${commit} (running what it emitted):\n${tsc.stdout.slice(0, 3000)}\n`)
  return { bin: join(dir, 'bin', 'pgshard'), source: `commit ${commit}` }
}
