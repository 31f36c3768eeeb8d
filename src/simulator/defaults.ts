import type { SimulatorPaths } from './types.js'

export const DEFAULT_SIMULATOR_PATHS: SimulatorPaths = {
  images: '/omni/get/images',
  imageLinks: '/omni/get/images/v2',
  secondIdImages: '/omni/get/second-id/images',
  concatenatedImages: '/omni/get/concatenated-images',
  start: '/omni/start',
  adminLogin: '/executive/log-in',
}

/** Every endpoint key, in `DEFAULT_SIMULATOR_PATHS` order. */
export const PATH_KEYS = Object.keys(DEFAULT_SIMULATOR_PATHS) as Array<keyof SimulatorPaths>

/** The endpoints that answer images (and also answer under `/0` + path). */
export const IMAGE_ENDPOINTS = ['images', 'imageLinks', 'secondIdImages', 'concatenatedImages'] as const
export type ImageEndpoint = (typeof IMAGE_ENDPOINTS)[number]

/** Endpoints faults apply to unless `FaultConfig.endpoints` says otherwise. */
export const DEFAULT_FAULT_ENDPOINTS: ReadonlyArray<keyof SimulatorPaths> = IMAGE_ENDPOINTS

/** Incode refuses request bodies over 10 MB (read as MiB: the more lenient reading, for requests). */
export const REQUEST_BODY_LIMIT_BYTES = 10 * 1024 * 1024

/** Past this much request body the simulator stops draining and drops the connection. */
export const REQUEST_DRAIN_LIMIT_BYTES = 64 * 1024 * 1024

export const DEFAULT_API_KEY = 'sim-api-key'
export const DEFAULT_ADMIN_EMAIL = 'admin@example.com'
export const DEFAULT_ADMIN_PASSWORD = 'sim-admin-password'
export const DEFAULT_LINK_TTL_MS = 3_600_000
export const DEFAULT_ADMIN_TOKEN_TTL_MS = 24 * 3_600_000
export const DEFAULT_SESSION_TOKEN_TTL_MS = 90 * 24 * 3_600_000
