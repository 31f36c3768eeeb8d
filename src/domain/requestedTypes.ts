import type { ImageType } from './imageTypes.js'

/** Removes duplicate types, keeping each type's first occurrence and the caller's order. */
export function foldTypes(types: readonly ImageType[]): ImageType[] {
  return [...new Set(types)]
}
