/** The error code of a network error, looking through AggregateError (happy eyeballs) and `cause`. */
export function errorCodeOf(err: unknown, depth = 0): string | undefined {
  if (typeof err !== 'object' || err === null || depth > 3) return undefined
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string' && code !== '') return code
  if (err instanceof AggregateError) {
    for (const inner of err.errors) {
      const innerCode = errorCodeOf(inner, depth + 1)
      if (innerCode !== undefined) return innerCode
    }
  }
  return errorCodeOf((err as { cause?: unknown }).cause, depth + 1)
}
