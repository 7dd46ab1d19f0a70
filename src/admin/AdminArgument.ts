/** A name given to a console command: as typed, or in double quotes (`"My DB"`, `""` for a quote inside). */
export function nameArgument(arg: string): string {
  return arg.length >= 2 && arg.startsWith('"') && arg.endsWith('"') ? arg.slice(1, -1).replace(/""/g, '"') : arg
}
