/**
 * A small baseline JPEG encoder (JFIF, YCbCr 4:4:4, standard Annex K tables).
 *
 * jpeg-js's `encode()` rebuilds a 65k-entry Huffman category table on every call (25–60 ms each), which
 * made generating a seeded session take over a second; this one keeps its tables and typed buffers across
 * calls and encodes a 160x120 picture in about a millisecond. Its output is checked by decoding it with
 * jpeg-js in the tests.
 */

/** Position in zigzag order → index in natural (row-major) order. */
const NATURAL_ORDER = new Uint8Array([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7,
  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46,
  53, 60, 61, 54, 47, 55, 62, 63,
])

const LUMA_QUANT = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22,
  29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103,
  121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]
const CHROMA_QUANT = [
  17,
  18,
  24,
  47,
  99,
  99,
  99,
  99,
  18,
  21,
  26,
  66,
  99,
  99,
  99,
  99,
  24,
  26,
  56,
  99,
  99,
  99,
  99,
  99,
  47,
  66,
  99,
  99,
  99,
  99,
  99,
  99,
  ...(new Array(32).fill(99) as number[]),
]

interface HuffmanSpec {
  /** Number of codes of each length 1..16. */
  counts: number[]
  values: number[]
}

const DC_LUMA: HuffmanSpec = {
  counts: [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
  values: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
}
const DC_CHROMA: HuffmanSpec = {
  counts: [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
  values: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
}
const AC_LUMA: HuffmanSpec = {
  counts: [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d],
  values: [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22,
    0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33,
    0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34,
    0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55,
    0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76,
    0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96,
    0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5,
    0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4,
    0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1,
    0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
  ],
}
const AC_CHROMA: HuffmanSpec = {
  counts: [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77],
  values: [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13,
    0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0, 0x15, 0x62,
    0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26, 0x27, 0x28, 0x29,
    0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54,
    0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75,
    0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94,
    0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3,
    0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2,
    0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea,
    0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
  ],
}

/** Code and length per symbol (Annex C). */
interface HuffmanTable {
  codes: Uint16Array
  lengths: Uint8Array
}

function buildTable(spec: HuffmanSpec): HuffmanTable {
  const codes = new Uint16Array(256)
  const lengths = new Uint8Array(256)
  let code = 0
  let k = 0
  for (let len = 1; len <= 16; len++) {
    const count = spec.counts[len - 1] ?? 0
    for (let i = 0; i < count; i++) {
      const symbol = spec.values[k++] ?? 0
      codes[symbol] = code++
      lengths[symbol] = len
    }
    code <<= 1
  }
  return { codes, lengths }
}

const TABLES = {
  dcLuma: buildTable(DC_LUMA),
  acLuma: buildTable(AC_LUMA),
  dcChroma: buildTable(DC_CHROMA),
  acChroma: buildTable(AC_CHROMA),
}

/** COS[u * 8 + x] = c(u)/2 * cos((2x + 1) u π / 16): the 1-D DCT-II basis. */
const COS = new Float64Array(64)
for (let u = 0; u < 8; u++) {
  for (let x = 0; x < 8; x++) {
    COS[u * 8 + x] = (u === 0 ? Math.SQRT1_2 : 1) * 0.5 * Math.cos(((2 * x + 1) * u * Math.PI) / 16)
  }
}

/** IJG quality scaling of a base quantisation table (natural order). */
function scaledQuant(base: readonly number[], quality: number): Uint8Array {
  const q = Math.min(100, Math.max(1, Math.round(quality)))
  const scale = q < 50 ? Math.floor(5000 / q) : 200 - q * 2
  return Uint8Array.from(base, (v) => Math.min(255, Math.max(1, Math.floor((v * scale + 50) / 100))))
}

const quantCache = new Map<number, { luma: Uint8Array; chroma: Uint8Array }>()
function quantTables(quality: number): { luma: Uint8Array; chroma: Uint8Array } {
  let t = quantCache.get(quality)
  if (!t) {
    t = { luma: scaledQuant(LUMA_QUANT, quality), chroma: scaledQuant(CHROMA_QUANT, quality) }
    quantCache.set(quality, t)
  }
  return t
}

class ByteWriter {
  buf: Uint8Array
  pos = 0
  private bitBuffer = 0
  private bitCount = 0

  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity)
  }

  private ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + extra))
    next.set(this.buf.subarray(0, this.pos))
    this.buf = next
  }

  byte(v: number): void {
    this.ensure(1)
    this.buf[this.pos++] = v & 0xff
  }

  word(v: number): void {
    this.byte(v >> 8)
    this.byte(v)
  }

  bytes(values: ArrayLike<number>): void {
    this.ensure(values.length)
    for (let i = 0; i < values.length; i++) this.buf[this.pos++] = (values[i] ?? 0) & 0xff
  }

  /** Entropy-coded bits, most significant first, with 0xFF byte stuffing. */
  bits(value: number, count: number): void {
    this.bitBuffer = (this.bitBuffer << count) | (value & ((1 << count) - 1))
    this.bitCount += count
    while (this.bitCount >= 8) {
      const b = (this.bitBuffer >> (this.bitCount - 8)) & 0xff
      this.byte(b)
      if (b === 0xff) this.byte(0)
      this.bitCount -= 8
    }
    this.bitBuffer &= (1 << this.bitCount) - 1
  }

  /** Pads the last byte with 1-bits. */
  flushBits(): void {
    if (this.bitCount > 0) this.bits(0x7f, 8 - this.bitCount)
  }
}

function bitLength(v: number): number {
  let a = v < 0 ? -v : v
  let n = 0
  while (a > 0) {
    n++
    a >>= 1
  }
  return n
}

/** Scratch buffers, reused across calls (encoding is synchronous). */
const block = new Float64Array(64)
const temp = new Float64Array(64)
const coefficients = new Int32Array(64)

/** Forward DCT of `block` (level-shifted samples), quantised into `coefficients` in zigzag order. */
function dctQuantise(quant: Uint8Array): void {
  for (let y = 0; y < 8; y++) {
    const row = y * 8
    const x0 = block[row]!
    const x1 = block[row + 1]!
    const x2 = block[row + 2]!
    const x3 = block[row + 3]!
    const x4 = block[row + 4]!
    const x5 = block[row + 5]!
    const x6 = block[row + 6]!
    const x7 = block[row + 7]!
    for (let u = 0; u < 8; u++) {
      const c = u * 8
      temp[row + u] =
        COS[c]! * x0 +
        COS[c + 1]! * x1 +
        COS[c + 2]! * x2 +
        COS[c + 3]! * x3 +
        COS[c + 4]! * x4 +
        COS[c + 5]! * x5 +
        COS[c + 6]! * x6 +
        COS[c + 7]! * x7
    }
  }
  for (let u = 0; u < 8; u++) {
    const y0 = temp[u]!
    const y1 = temp[8 + u]!
    const y2 = temp[16 + u]!
    const y3 = temp[24 + u]!
    const y4 = temp[32 + u]!
    const y5 = temp[40 + u]!
    const y6 = temp[48 + u]!
    const y7 = temp[56 + u]!
    for (let v = 0; v < 8; v++) {
      const c = v * 8
      block[c + u] =
        COS[c]! * y0 +
        COS[c + 1]! * y1 +
        COS[c + 2]! * y2 +
        COS[c + 3]! * y3 +
        COS[c + 4]! * y4 +
        COS[c + 5]! * y5 +
        COS[c + 6]! * y6 +
        COS[c + 7]! * y7
    }
  }
  for (let k = 0; k < 64; k++) {
    const n = NATURAL_ORDER[k]!
    coefficients[k] = Math.round(block[n]! / quant[n]!)
  }
}

function encodeBlock(out: ByteWriter, previousDc: number, dc: HuffmanTable, ac: HuffmanTable): number {
  const value = coefficients[0]!
  const diff = value - previousDc
  const size = bitLength(diff)
  out.bits(dc.codes[size]!, dc.lengths[size]!)
  if (size > 0) out.bits(diff < 0 ? diff + (1 << size) - 1 : diff, size)
  let run = 0
  for (let k = 1; k < 64; k++) {
    const c = coefficients[k]!
    if (c === 0) {
      run++
      continue
    }
    while (run > 15) {
      out.bits(ac.codes[0xf0] ?? 0, ac.lengths[0xf0] ?? 0)
      run -= 16
    }
    const cs = bitLength(c)
    const symbol = (run << 4) | cs
    out.bits(ac.codes[symbol]!, ac.lengths[symbol]!)
    out.bits(c < 0 ? c + (1 << cs) - 1 : c, cs)
    run = 0
  }
  if (run > 0) out.bits(ac.codes[0] ?? 0, ac.lengths[0] ?? 0)
  return value
}

function writeHuffman(out: ByteWriter, tableClassAndId: number, spec: HuffmanSpec): void {
  out.byte(tableClassAndId)
  out.bytes(spec.counts)
  out.bytes(spec.values)
}

/** Encodes RGBA (or RGB when `data.length === width * height * 3`) pixels as a baseline JFIF JPEG. */
export function encodeBaselineJpeg(
  image: { width: number; height: number; data: Uint8Array },
  quality = 85,
): Buffer {
  const { width, height, data } = image
  if (width < 1 || height < 1 || width > 0xffff || height > 0xffff) throw new RangeError('bad JPEG size')
  const channels = data.length === width * height * 3 ? 3 : 4
  if (data.length < width * height * channels) throw new RangeError('pixel data too short')
  const { luma, chroma } = quantTables(quality)
  const out = new ByteWriter(1024 + width * height)

  out.word(0xffd8) // SOI
  out.word(0xffe0) // APP0 JFIF 1.01, no density units, no thumbnail
  out.word(16)
  out.bytes([0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0])
  out.word(0xffdb) // DQT: two 8-bit tables, zigzag order
  out.word(2 + 2 * 65)
  out.byte(0)
  for (let k = 0; k < 64; k++) out.byte(luma[NATURAL_ORDER[k] ?? 0] ?? 1)
  out.byte(1)
  for (let k = 0; k < 64; k++) out.byte(chroma[NATURAL_ORDER[k] ?? 0] ?? 1)
  out.word(0xffc0) // SOF0
  out.word(17)
  out.byte(8)
  out.word(height)
  out.word(width)
  out.bytes([3, 1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1])
  out.word(0xffc4) // DHT
  const specs = [DC_LUMA, AC_LUMA, DC_CHROMA, AC_CHROMA]
  out.word(2 + specs.reduce((n, s) => n + 17 + s.values.length, 0))
  writeHuffman(out, 0x00, DC_LUMA)
  writeHuffman(out, 0x10, AC_LUMA)
  writeHuffman(out, 0x01, DC_CHROMA)
  writeHuffman(out, 0x11, AC_CHROMA)
  out.word(0xffda) // SOS
  out.word(12)
  out.bytes([3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0])

  const ys = new Float64Array(64)
  const cbs = new Float64Array(64)
  const crs = new Float64Array(64)
  let dcY = 0
  let dcCb = 0
  let dcCr = 0
  for (let by = 0; by < height; by += 8) {
    for (let bx = 0; bx < width; bx += 8) {
      for (let j = 0; j < 8; j++) {
        const y = Math.min(by + j, height - 1)
        for (let i = 0; i < 8; i++) {
          const x = Math.min(bx + i, width - 1)
          const p = (y * width + x) * channels
          const r = data[p]!
          const g = data[p + 1]!
          const b = data[p + 2]!
          ys[j * 8 + i] = 0.299 * r + 0.587 * g + 0.114 * b - 128
          cbs[j * 8 + i] = -0.168736 * r - 0.331264 * g + 0.5 * b
          crs[j * 8 + i] = 0.5 * r - 0.418688 * g - 0.081312 * b
        }
      }
      block.set(ys)
      dctQuantise(luma)
      dcY = encodeBlock(out, dcY, TABLES.dcLuma, TABLES.acLuma)
      block.set(cbs)
      dctQuantise(chroma)
      dcCb = encodeBlock(out, dcCb, TABLES.dcChroma, TABLES.acChroma)
      block.set(crs)
      dctQuantise(chroma)
      dcCr = encodeBlock(out, dcCr, TABLES.dcChroma, TABLES.acChroma)
    }
  }
  out.flushBits()
  out.word(0xffd9) // EOI
  return Buffer.from(out.buf.buffer, out.buf.byteOffset, out.pos)
}
