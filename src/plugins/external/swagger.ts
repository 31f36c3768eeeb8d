import { createRequire } from 'node:module'
import path from 'node:path'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { docsUiOptions } from './docsUi.js'

export const OPENAPI_INFO = {
  title: 'Incode image gateway',
  version: '0.1.0',
  description:
    'Serves the images captured during Incode onboarding sessions. `/v1` routes split base64 fetches under ' +
    "Incode's 10 MB answer cap and cache temporary links; the `/omni/...` drop-in paths answer exactly as " +
    'Incode does, so existing Incode clients only change their base URL.',
}

/**
 * Swagger UI's static files, found through module resolution rather than beside its code: the
 * service is bundled into one file (scripts/bundle.ts), swagger-ui's code included, while its
 * files stay in its package folder.
 */
function swaggerUiFiles(): { baseDir: string } {
  const baseDir = path.join(
    path.dirname(createRequire(import.meta.url).resolve('@fastify/swagger-ui')),
    'static',
  )
  return { baseDir }
}

/** OpenAPI document generated from the routes' schemas, and Swagger UI at /docs. */
export default fp(
  async function swaggerPlugin(app: FastifyInstance) {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: OPENAPI_INFO,
        tags: [
          { name: 'images', description: 'Base64 images, split and merged' },
          { name: 'links', description: 'Temporary image links, cached short of their expiry' },
          { name: 'incode', description: 'Drop-in Incode paths' },
          { name: 'health', description: 'Liveness and readiness' },
        ],
        components: {
          securitySchemes: {
            apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key', description: 'Partner API key' },
            sessionToken: { type: 'apiKey', in: 'header', name: 'X-Incode-Session-Token' },
            incodeToken: { type: 'apiKey', in: 'header', name: 'X-Incode-Hardware-Id' },
          },
        },
      },
      refResolver: {
        buildLocalReference: (json, _baseUri, _fragment, i) =>
          typeof json.$id === 'string' ? json.$id : `def-${i}`,
      },
    })
    await app.register(swaggerUi, { ...docsUiOptions(), ...swaggerUiFiles() })
  },
  { name: 'swagger' },
)
