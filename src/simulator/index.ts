/**
 * Incode simulator: a real HTTP server (node:http) that behaves like Incode Omni's image endpoints, with
 * seeded sessions of realistic JPEGs, presigned-style image links, a latency model, injectable faults and
 * a call log. Used by the demo, the tests and the benchmarks.
 */
export type {
  FaultConfig,
  LatencyModel,
  SimulatedAttempt,
  SimulatedSession,
  Simulator,
  SimulatorCall,
  SimulatorOptions,
  SimulatorPaths,
} from './types.js'
export { DEFAULT_SIMULATOR_PATHS, REQUEST_BODY_LIMIT_BYTES } from './defaults.js'
export { SEEDED_INTERVIEW_IDS, SEEDED_SESSIONS } from './sessions.js'
export { startSimulator } from './server.js'
