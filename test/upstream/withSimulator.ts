import type { Test } from 'tap'
import { loadConfig, type Config } from '../../src/config.js'
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator/index.js'

/** A simulator on 127.0.0.1, closed when the test ends. */
export async function startSim(t: Test, options: SimulatorOptions = {}): Promise<Simulator> {
  const sim = await startSimulator({ host: '127.0.0.1', port: 0, ...options })
  t.teardown(() => sim.close())
  return sim
}

/** A Config pointing at `sim` with its API key and admin credentials, plus overrides. */
export function simConfig(sim: Simulator, env: Record<string, string | undefined> = {}): Config {
  return loadConfig({
    INCODE_BASE_URL: sim.url,
    INCODE_API_KEY: sim.apiKey,
    INCODE_ADMIN_EMAIL: sim.adminEmail,
    INCODE_ADMIN_PASSWORD: sim.adminPassword,
    ...env,
  })
}

/** A clock tests move by hand. */
export function fakeClock(start = Date.now()): { now: () => number; advance: (ms: number) => void } {
  let at = start
  return { now: () => at, advance: (ms) => (at += ms) }
}

export const HOUR = 3_600_000
