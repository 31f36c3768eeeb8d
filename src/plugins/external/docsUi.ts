import type { FastifySwaggerUiOptions } from '@fastify/swagger-ui'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'

/**
 * What Swagger UI at /docs shows and may load: this service's name, logo and favicon, and a
 * Content-Security-Policy that lets it work on any host name over http as over https.
 */

export const DOCS_TITLE = 'Incode image gateway · API'

/** The service's mark: a picture frame (the images) on Incode-like blue. Logo and favicon. */
export const LOGO_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
<title>Incode image gateway</title>
<rect width="64" height="64" rx="14" fill="#1b3a6b"/>
<rect x="12" y="16" width="40" height="32" rx="4" fill="none" stroke="#fff" stroke-width="4"/>
<circle cx="24" cy="27" r="4" fill="#7fd1ff"/>
<path d="M14 46 28 32l8 8 6-6 10 10" fill="none" stroke="#7fd1ff" stroke-width="4" stroke-linejoin="round"/>
</svg>
`

/**
 * The CSP of the /docs pages. Swagger UI loads only its own files (`'self'`), shows the logo as a
 * data: URL and image answers as blob: URLs, and calls the API on its own origin. Unlike the
 * Swagger UI plugin's own CSP there is no `upgrade-insecure-requests`: reached as
 * http://gateway.internal/docs (plain http inside a mesh), the browser would fetch every asset
 * over https and show a blank page. No inline style either: Swagger's own topbar logo, an SVG
 * carrying a <style>, is never rendered (see UI_PLUGINS).
 */
export const DOCS_CSP = [
  "default-src 'self'",
  "base-uri 'self'",
  "connect-src 'self'",
  "font-src 'self' data:",
  "form-action 'self'",
  "frame-ancestors 'self'",
  "img-src 'self' data: blob:",
  "object-src 'none'",
  "script-src 'self'",
  "script-src-attr 'none'",
  "style-src 'self'",
].join('; ')

/**
 * Code for the page, as a uiConfig value: @fastify/swagger-ui writes a function there as its
 * `toString()`. A compiled function's own source text is not safe to ship (tsx and esbuild add
 * helpers such as `__name` to it), so the source is given as text; the stub never runs in Node.
 */
function pageCode(source: string): () => never {
  const stub = (): never => {
    throw new Error('Swagger UI page code runs in the browser only')
  }
  return Object.assign(stub, { toString: () => source })
}

/**
 * Swagger UI plugins. Setting `plugins` replaces the default list, hence DownloadUrl again (it
 * loads the document). The second renders no Logo component (Swagger's SVG, whose inline <style>
 * the CSP refuses): the plugin's `logo` option puts ours in its place.
 */
const UI_PLUGINS = [
  pageCode('function DownloadUrl(system) { return SwaggerUIBundle.plugins.DownloadUrl(system) }'),
  pageCode('function NoSwaggerLogo() { return { components: { Logo: function () { return null } } } }'),
]

/**
 * Helmet's Cross-Origin-Opener-Policy is left off the /docs pages: browsers ignore it on a plain
 * http origin other than loopback and say so as a console error on every load. The rest of
 * helmet's headers stay, and every other answer keeps it.
 */
function dropOpenerPolicy(
  _request: FastifyRequest,
  reply: FastifyReply,
  done: HookHandlerDoneFunction,
): void {
  reply.removeHeader('cross-origin-opener-policy')
  done()
}

/** @fastify/swagger-ui's options for /docs (its static files' folder is given by the caller). */
export function docsUiOptions(): FastifySwaggerUiOptions {
  const logo = Buffer.from(LOGO_SVG)
  return {
    routePrefix: '/docs',
    uiConfig: {
      tryItOutEnabled: true,
      plugins: UI_PLUGINS as NonNullable<FastifySwaggerUiOptions['uiConfig']>['plugins'],
    },
    staticCSP: DOCS_CSP,
    uiHooks: { onRequest: dropOpenerPolicy },
    logo: { type: 'image/svg+xml', content: logo },
    theme: {
      title: DOCS_TITLE,
      favicon: [{ filename: 'favicon.svg', rel: 'icon', type: 'image/svg+xml', sizes: 'any', content: logo }],
    },
  }
}
