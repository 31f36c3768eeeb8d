import type { ScannedEntry } from './flatJson.js'
import type { ImageType } from './imageTypes.js'

/** One part's answer to a split drop-in request: the types it asked for, and Incode's entries. */
export interface IncodeImagesPart {
  requested: readonly ImageType[]
  entries: readonly ScannedEntry[]
}

const QUOTE = Buffer.from('"')
const NULL = Buffer.from('null')

/**
 * The answer Incode would have given to the whole request, from its parts' answers: one flat
 * object of every entry a part asked for, in the parts' order and each part's own order, values
 * as Incode sent them (base64 neither decoded nor re-encoded; strings keep their escapes). Entries
 * a part did not ask for (fields, other types) are left out, so no type answers for another part.
 */
export function incodeImagesJson(parts: readonly IncodeImagesPart[]): Buffer {
  const pieces: Buffer[] = []
  let count = 0
  for (const part of parts) {
    const requested = new Set<string>(part.requested)
    for (const entry of part.entries) {
      if (!requested.has(entry.key)) continue
      pieces.push(Buffer.from(`${count === 0 ? '{' : ','}${JSON.stringify(entry.key)}:`))
      count++
      if (entry.kind === 'string') pieces.push(QUOTE, entry.raw, QUOTE)
      else if (entry.kind === 'null') pieces.push(NULL)
      else pieces.push(entry.raw)
    }
  }
  pieces.push(Buffer.from(count === 0 ? '{}' : '}'))
  return Buffer.concat(pieces)
}
