import { LineCounter, isNode, parseDocument, type Document, type YAMLError } from 'yaml'
import type { ConfigProblem, PathSegment } from './ConfigError.js'

/** Syntax problems have no config path: they are reported under this one. */
const SYNTAX_PATH = '(yaml)'

/** A parsed YAML file that can still tell which line a config path came from. */
export class YamlSource {
  private constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** Parses `text`; `value` is undefined when there are syntax problems. */
  static parse(text: string): { source: YamlSource; value?: unknown; problems: ConfigProblem[] } {
    const lines = new LineCounter()
    const doc = parseDocument(text, { lineCounter: lines })
    const source = new YamlSource(doc, lines)
    const problems: ConfigProblem[] = doc.errors.map((e) => ({
      path: SYNTAX_PATH,
      message: syntaxMessage(e),
      line: e.linePos?.[0].line,
      column: e.linePos?.[0].col,
    }))
    if (problems.length > 0) return { source, problems }
    try {
      return { source, value: doc.toJS(), problems }
    } catch (e) {
      // Unresolved aliases and alias bombs (maxAliasCount) only show up when the tree is built.
      return { source, problems: [{ path: SYNTAX_PATH, message: firstLine((e as Error).message) }] }
    }
  }

  /** Line of the node at `path`, or of its nearest ancestor present in the file (a missing key's parent). */
  lineOf(path: readonly PathSegment[]): number | undefined {
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? this.doc.contents : this.doc.getIn(path.slice(0, n), true)
      if (isNode(node) && node.range) return this.lines.linePos(node.range[0]).line
    }
    return undefined
  }
}

/**
 * yaml's message without what it quotes from the file: it appends the offending lines, and some messages end
 * with the offending text (`Block scalar header includes extra characters: |…`). That text may be a secret.
 */
function syntaxMessage(e: YAMLError): string {
  const message = firstLine(e.message)
  switch (e.code) {
    case 'MULTIPLE_DOCS':
      return 'the file holds more than one YAML document'
    case 'BAD_DQ_ESCAPE':
      return 'invalid escape sequence in a double-quoted string'
    case 'UNEXPECTED_TOKEN':
      return message.split(': ', 1)[0]
    default:
      return message
  }
}

function firstLine(message: string): string {
  return message.split('\n', 1)[0].replace(/ at line \d+, column \d+:?$/, '')
}
