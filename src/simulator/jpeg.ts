import jpeg from 'jpeg-js'

import { fillRandom, mulberry32 } from './prng.js'

/** What a seeded picture shows; decides its pixel size and pattern. */
export type PictureKind = 'idFrame' | 'idCard' | 'face' | 'document' | 'signature'

export const PICTURE_SIZES: Record<PictureKind, { width: number; height: number }> = {
  idFrame: { width: 160, height: 120 },
  idCard: { width: 144, height: 90 },
  face: { width: 90, height: 120 },
  document: { width: 96, height: 120 },
  signature: { width: 128, height: 48 },
}

/** Largest data length of one APPn segment (its 2-byte length field counts itself). */
export const MAX_APP_SEGMENT_DATA = 65533
const APP15 = 0xef

type Rgb = [number, number, number]

class Canvas {
  readonly data: Buffer
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.data = Buffer.alloc(width * height * 4, 0xff)
  }

  set(x: number, y: number, [r, g, b]: Rgb): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return
    const i = (y * this.width + x) * 4
    this.data[i] = r
    this.data[i + 1] = g
    this.data[i + 2] = b
    this.data[i + 3] = 0xff
  }

  gradient(from: Rgb, to: Rgb): void {
    for (let y = 0; y < this.height; y++) {
      for (let x = 0; x < this.width; x++) {
        const f = (x + y) / (this.width + this.height)
        this.set(x, y, [
          Math.round(from[0] + (to[0] - from[0]) * f),
          Math.round(from[1] + (to[1] - from[1]) * f),
          Math.round(from[2] + (to[2] - from[2]) * f),
        ])
      }
    }
  }

  rect(x0: number, y0: number, w: number, h: number, colour: Rgb): void {
    for (let y = Math.round(y0); y < Math.round(y0 + h); y++) {
      for (let x = Math.round(x0); x < Math.round(x0 + w); x++) this.set(x, y, colour)
    }
  }

  ellipse(cx: number, cy: number, rx: number, ry: number, colour: Rgb): void {
    for (let y = Math.floor(cy - ry); y <= Math.ceil(cy + ry); y++) {
      for (let x = Math.floor(cx - rx); x <= Math.ceil(cx + rx); x++) {
        const dx = (x - cx) / rx
        const dy = (y - cy) / ry
        if (dx * dx + dy * dy <= 1) this.set(x, y, colour)
      }
    }
  }

  /** Lines of "text": short dark bars of seeded lengths. */
  textLines(
    x0: number,
    y0: number,
    w: number,
    lines: number,
    gap: number,
    colour: Rgb,
    rnd: () => number,
  ): void {
    for (let i = 0; i < lines; i++) this.rect(x0, y0 + i * gap, w * (0.45 + 0.55 * rnd()), 2, colour)
  }
}

function colour(rnd: () => number, min = 0, max = 255): Rgb {
  const c = (): number => Math.round(min + rnd() * (max - min))
  return [c(), c(), c()]
}

/** Draws a small deterministic picture (RGBA) of the given kind; `attempt` shifts it visibly. */
export function drawPicture(
  kind: PictureKind,
  seed: number,
  attempt: number,
): { width: number; height: number; data: Buffer } {
  const { width, height } = PICTURE_SIZES[kind]
  const rnd = mulberry32(seed)
  const c = new Canvas(width, height)
  const ink: Rgb = [30, 30, 50]
  const shift = attempt * 3
  switch (kind) {
    case 'idFrame': {
      c.gradient(colour(rnd, 60, 140), colour(rnd, 90, 180)) // the table
      const cardW = width * 0.78
      const cardH = cardW * 0.63
      const x = (width - cardW) / 2 + shift - 3
      const y = (height - cardH) / 2
      c.rect(x, y, cardW, cardH, colour(rnd, 190, 250))
      c.rect(x, y, cardW, cardH * 0.16, colour(rnd, 40, 120))
      c.rect(x + 6, y + cardH * 0.25, cardW * 0.28, cardH * 0.6, colour(rnd, 120, 200))
      c.ellipse(x + 6 + cardW * 0.14, y + cardH * 0.48, cardW * 0.08, cardH * 0.16, colour(rnd, 150, 230))
      c.textLines(x + cardW * 0.38, y + cardH * 0.3, cardW * 0.55, 5, cardH * 0.12, ink, rnd)
      break
    }
    case 'idCard': {
      c.gradient(colour(rnd, 180, 240), colour(rnd, 200, 255))
      c.rect(0, 0, width, height * 0.16, colour(rnd, 40, 120))
      c.rect(6, height * 0.25, width * 0.28, height * 0.62, colour(rnd, 120, 200))
      c.ellipse(6 + width * 0.14, height * 0.5, width * 0.08, height * 0.17, colour(rnd, 150, 230))
      c.textLines(width * 0.38 + shift, height * 0.3, width * 0.55, 5, height * 0.12, ink, rnd)
      break
    }
    case 'face': {
      c.gradient(colour(rnd, 100, 220), colour(rnd, 100, 220))
      const skin: Rgb = [
        Math.round(150 + rnd() * 90),
        Math.round(110 + rnd() * 70),
        Math.round(80 + rnd() * 60),
      ]
      const cx = width / 2 + shift - 3
      c.ellipse(cx, height * 0.95, width * 0.45, height * 0.3, colour(rnd, 20, 200)) // shoulders
      c.ellipse(cx, height * 0.45, width * 0.28, height * 0.3, skin)
      c.ellipse(cx, height * 0.2, width * 0.3, height * 0.12, colour(rnd, 10, 90)) // hair
      c.ellipse(cx - width * 0.1, height * 0.42, 3, 2, ink)
      c.ellipse(cx + width * 0.1, height * 0.42, 3, 2, ink)
      c.rect(cx - width * 0.08, height * 0.58, width * 0.16, 2, [150, 50, 60])
      break
    }
    case 'document': {
      c.gradient([250, 250, 245], colour(rnd, 225, 250))
      c.rect(8, 8, width * 0.4, 6, colour(rnd, 20, 120))
      c.textLines(8, 24 + shift, width - 16, 12, 7, ink, rnd)
      c.rect(width - 36, height - 24, 28, 14, colour(rnd, 60, 200))
      break
    }
    case 'signature': {
      c.gradient([255, 255, 255], [240, 240, 235])
      const amp = height * (0.2 + 0.15 * rnd())
      const freq = 0.08 + 0.12 * rnd()
      const phase = rnd() * Math.PI * 2 + attempt
      for (let x = 6; x < width - 6; x++) {
        const y = height / 2 + amp * Math.sin(x * freq + phase) * Math.cos(x * freq * 0.37)
        c.rect(x, y, 1, 2, ink)
      }
      break
    }
  }
  // attempt marker: one dot per attempt in the corner
  for (let i = 0; i <= attempt; i++) c.rect(width - 5 - i * 4, height - 5, 3, 3, [220, 30, 30])
  return { width, height, data: c.data }
}

/** A baseline JFIF JPEG (jpeg-js; 25-60 ms a call, whatever the size: sessions cache what it makes). */
export function encodeJpeg(picture: { width: number; height: number; data: Buffer }, quality = 85): Buffer {
  return jpeg.encode(picture, quality).data
}

/**
 * Pads a JPEG to `targetBytes` with APP15 segments of seeded pseudo-random bytes. They go right after
 * SOI, or after the JFIF APP0 segment when there is one (JFIF wants APP0 first); decoders skip APPn.
 * Returns the JPEG itself when it is already as large as the target (or within 4 bytes of it).
 */
export function padJpeg(jpegBytes: Buffer, targetBytes: number, seed: number): Buffer {
  if (jpegBytes[0] !== 0xff || jpegBytes[1] !== 0xd8) throw new Error('not a JPEG (no SOI)')
  let head = 2
  if (jpegBytes[2] === 0xff && jpegBytes[3] === 0xe0) head = 4 + jpegBytes.readUInt16BE(4)
  const padding = Math.floor(targetBytes) - jpegBytes.length
  if (padding < 4) return jpegBytes
  const segments = Math.ceil(padding / (MAX_APP_SEGMENT_DATA + 4))
  const total = jpegBytes.length + padding
  // an ArrayBuffer of its own, 4-byte aligned, so the PRNG can write words
  const out = Buffer.from(new ArrayBuffer(Math.ceil(total / 4) * 4), 0, total)
  jpegBytes.copy(out, 0, 0, head)
  fillRandom(out.subarray(head, head + padding), seed)
  let at = head
  let left = padding
  for (let i = 0; i < segments; i++) {
    const size = Math.ceil(left / (segments - i)) // header + data, spread evenly
    out[at] = 0xff
    out[at + 1] = APP15
    out.writeUInt16BE(size - 2, at + 2)
    at += size
    left -= size
  }
  jpegBytes.copy(out, at, head)
  return out
}

/** A valid JPEG of about `targetBytes`: a small seeded picture plus seeded APP15 padding. */
export function seededJpeg(kind: PictureKind, seed: number, attempt: number, targetBytes: number): Buffer {
  return padJpeg(encodeJpeg(drawPicture(kind, seed, attempt)), targetBytes, seed ^ 0x5bd1e995)
}
