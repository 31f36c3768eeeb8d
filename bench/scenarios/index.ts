/** The benchmark's scenarios, one file each, and what they share (bench/run.ts runs them). */
export { base64FullSet } from './base64FullSet.js'
export { coalescing } from './coalescing.js'
export { coldStart } from './coldStart.js'
export { fleet } from './fleet.js'
export { growth } from './growth.js'
export { linksCold } from './linksCold.js'
export { linksWarm } from './linksWarm.js'
export { memory } from './memory.js'
export {
  ALL_TYPES,
  FULL_PROFILE,
  LINK_TYPES,
  QUICK_PROFILE,
  type Ctx,
  type Profile,
  type Row,
  type ScenarioResult,
} from './shared.js'
