import jpeg from 'jpeg-js'

/** Grid used to tile `count` pictures: as square as possible, filled row by row. */
export function gridFor(count: number): { columns: number; rows: number } {
  const columns = Math.max(1, Math.ceil(Math.sqrt(count)))
  return { columns, rows: Math.max(1, Math.ceil(count / columns)) }
}

/**
 * Decodes each JPEG (jpeg-js), tiles the pictures in a grid of equal cells (cell = largest width x largest
 * height, grey background) and encodes the result as one baseline JPEG (jpeg-js).
 */
export function concatenateJpegs(parts: readonly Buffer[], quality = 80): Buffer {
  if (parts.length === 0) throw new Error('nothing to concatenate')
  const pictures = parts.map((bytes) =>
    jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 256 }),
  )
  const cellW = Math.max(...pictures.map((p) => p.width))
  const cellH = Math.max(...pictures.map((p) => p.height))
  const { columns, rows } = gridFor(pictures.length)
  const width = columns * cellW
  const height = rows * cellH
  const data = new Uint8Array(width * height * 4).fill(0x80)
  pictures.forEach((p, i) => {
    const ox = (i % columns) * cellW + Math.floor((cellW - p.width) / 2)
    const oy = Math.floor(i / columns) * cellH + Math.floor((cellH - p.height) / 2)
    for (let y = 0; y < p.height; y++) {
      const from = y * p.width * 4
      data.set(p.data.subarray(from, from + p.width * 4), ((oy + y) * width + ox) * 4)
    }
  })
  return jpeg.encode({ width, height, data }, quality).data
}
