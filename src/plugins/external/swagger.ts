import { createRequire } from 'node:module'
import path from 'node:path'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { BODY_OPTIONAL } from '../../routes/responses.js'
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

type Operation = Record<string, unknown> & { requestBody?: { required?: boolean } }

/**
 * The last step of generating the document: the operations marked BODY_OPTIONAL get a body that
 * is not required (@fastify/swagger writes every body as required), and lose the mark.
 */
function finishDocument<T>(document: T): T {
  const paths = (document as { paths?: Record<string, Record<string, Operation>> }).paths ?? {}
  for (const operations of Object.values(paths)) {
    for (const operation of Object.values(operations)) {
      if (!(BODY_OPTIONAL in operation)) continue
      Reflect.deleteProperty(operation, BODY_OPTIONAL)
      if (operation.requestBody) operation.requestBody.required = false
    }
  }
  return document
}

/** OpenAPI document generated from the routes' schemas, and Swagger UI at /docs. */
export default fp(
  async function swaggerPlugin(app: FastifyInstance) {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: OPENAPI_INFO,
        // Relative: the service that serves the document (Swagger UI's Execute goes to the host the
        // page came from, whatever its name); the demo's address for generated clients.
        servers: [
          { url: '/', description: 'The service serving this document' },
          { url: 'http://127.0.0.1:3000', description: 'The demo (npm run demo)' },
        ],
        tags: [
          { name: 'images', description: 'Base64 images, split and merged' },
          { name: 'links', description: 'Temporary image links, cached short of their expiry' },
          { name: 'incode', description: 'Drop-in Incode paths' },
          { name: 'health', description: 'Liveness and readiness' },
        ],
        components: {
          securitySchemes: {
            apiKey: {
              type: 'apiKey',
              in: 'header',
              name: 'x-api-key',
              description:
                "A partner service's API key, issued by this service's operators (API_KEYS); its scopes say which routes it may call. The demo's is `demo-partner-key`.",
            },
            sessionToken: {
              type: 'apiKey',
              in: 'header',
              name: 'X-Incode-Session-Token',
              description:
                "A frontend's Incode session token: the token Incode gave when the onboarding session started (`/omni/start`). It names its own session. `npm run demo` prints one per seeded session.",
            },
            incodeToken: {
              type: 'apiKey',
              in: 'header',
              name: 'X-Incode-Hardware-Id',
              description:
                "The Incode token an Incode client already sends: a session token (from `/omni/start`), or an admin token (from Incode's executive log-in) on the non-/0 paths with `?id=`.",
            },
          },
        },
      },
      transformObject: (document) =>
        'openapiObject' in document ? finishDocument(document.openapiObject) : {},
      refResolver: {
        buildLocalReference: (json, _baseUri, _fragment, i) =>
          typeof json.$id === 'string' ? json.$id : `def-${i}`,
      },
    })
    await app.register(swaggerUi, { ...docsUiOptions(), ...swaggerUiFiles() })
  },
  { name: 'swagger' },
)
