/**
 * A partner service's client, as the README shows it: openapi-fetch typed by the generated
 * openapi/schema.d.ts. client.test.ts compiles this file with tsc (the `@ts-expect-error` lines
 * must be errors, or tsc fails on an unused directive) and runs it against the service.
 */
import createClient from 'openapi-fetch'
import type { components, paths } from '../../openapi/schema.js'

export type ImageType = components['schemas']['ImageType']

/**
 * A partner's client: the API key is part of its type, so a client without one does not compile
 * (the document declares credentials as security schemes, which generated types leave out).
 */
export function partnerClient(options: { baseUrl: string; apiKey: string }) {
  return createClient<paths>({ baseUrl: options.baseUrl, headers: { 'x-api-key': options.apiKey } })
}

export interface PartnerView {
  /** The selfie's JPEG bytes, decoded from base64. */
  selfie: Buffer | undefined
  /** A link a browser can open to see the front of the ID. */
  frontIdLink: string | undefined
  /** The error code of a request for an interview Incode does not know. */
  unknownInterviewCode: string | undefined
}

export async function partnerCall(
  baseUrl: string,
  apiKey: string,
  interviewId: string,
): Promise<PartnerView> {
  const client = partnerClient({ baseUrl, apiKey })

  const images = await client.POST('/v1/sessions/{interviewId}/images', {
    params: { path: { interviewId } },
    body: { images: ['selfie', 'croppedFace'] },
  })
  const selfie = images.data?.images.selfie
  const links = await client.POST('/v1/sessions/{interviewId}/image-links', {
    params: { path: { interviewId } },
    body: { images: ['fullFrameFrontID'] },
  })
  const unknown = await client.POST('/v1/sessions/{interviewId}/images', {
    params: { path: { interviewId: '662f1a3b9c4e5d6f7a8b9cff' } },
    body: { images: ['selfie'] },
  })
  return {
    selfie: selfie === undefined ? undefined : Buffer.from(selfie, 'base64'),
    frontIdLink: links.data?.images.fullFrameFrontID?.url,
    unknownInterviewCode: unknown.error?.code,
  }
}

/** Never called: each line below must fail to compile (tsc reports an unused directive otherwise). */
export async function mistakes(baseUrl: string, apiKey: string, interviewId: string): Promise<void> {
  // @ts-expect-error a client without its credential
  partnerClient({ baseUrl })

  const client = partnerClient({ baseUrl, apiKey })
  const answer = await client.POST('/v1/sessions/{interviewId}/images', {
    params: { path: { interviewId } },
    // @ts-expect-error a misspelt image type
    body: { images: ['selfy'] },
  })
  // @ts-expect-error a misspelt image type among the answer's keys
  const _selfy = answer.data?.images.selfy

  // @ts-expect-error a route the service does not have
  await client.POST('/v1/sessions/{interviewId}/imagez', { params: { path: { interviewId } } })

  const links = await client.POST('/v1/sessions/{interviewId}/image-links', {
    params: { path: { interviewId } },
    body: { images: ['croppedFace'] },
  })
  // @ts-expect-error links exist only for linkable types: no croppedFace link
  const _croppedFaceLink = links.data?.images.croppedFace
}
