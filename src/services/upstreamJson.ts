import { type ScannedEntry, scanFlatJsonObject } from '../domain/flatJson.js'
import { UpstreamBadResponseError } from '../errors.js'

/**
 * The entries of an Incode answer that must be one flat JSON object (base64 images, the
 * concatenated image); anything else is Incode's fault: 502 UPSTREAM_BAD_RESPONSE.
 */
export function scanUpstreamObject(body: Buffer): ScannedEntry[] {
  try {
    return scanFlatJsonObject(body)
  } catch (err) {
    throw new UpstreamBadResponseError(
      'Incode sent an answer that is not a JSON object',
      'UPSTREAM_BAD_RESPONSE',
      {
        cause: err,
      },
    )
  }
}
