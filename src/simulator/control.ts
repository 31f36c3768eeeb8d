import { parseFaultConfig, parseLatency } from './faults.js'
import { HttpError, isLoopback, jsonAnswer, type Answer } from './http.js'
import { bodyObject, parseBody, type RequestContext } from './request.js'
import { SEEDED_SESSIONS } from './sessions.js'
import type { FaultConfig, LatencyModel, SimulatorCall } from './types.js'

/** What the control API reads and changes on a running simulator. */
export interface ControlTarget {
  readonly calls: readonly SimulatorCall[]
  readonly faultConfig: FaultConfig | undefined
  readonly latencyModel: LatencyModel
  resetCalls(): void
  setFaults(faults: FaultConfig | undefined): void
  setLatency(latency: LatencyModel): void
  sessionToken(interviewId: string): string
}

const METHODS: Record<string, string[]> = {
  '/__sim/calls': ['GET', 'DELETE'],
  '/__sim/faults': ['GET', 'PUT'],
  '/__sim/latency': ['GET', 'PUT'],
  '/__sim/sessions': ['GET'],
}

/** The answer of a control endpoint (`/__sim/...`, loopback clients only); throws HttpError. */
export function controlAnswer(target: ControlTarget, ctx: RequestContext, raw: Buffer): Answer {
  if (!isLoopback(ctx.req.socket.remoteAddress)) {
    throw new HttpError(403, 'Control endpoints answer loopback clients only')
  }
  const allowed = METHODS[ctx.path]
  if (!allowed) throw new HttpError(404, `No control endpoint ${ctx.path}`)
  if (!allowed.includes(ctx.method)) {
    throw new HttpError(405, `Request method '${ctx.method}' is not supported`, { Allow: allowed.join(', ') })
  }
  switch (`${ctx.method} ${ctx.path}`) {
    case 'GET /__sim/calls': {
      const endpoint = ctx.query.get('endpoint')
      return jsonAnswer(endpoint ? target.calls.filter((c) => c.endpoint === endpoint) : target.calls)
    }
    case 'DELETE /__sim/calls': {
      const cleared = target.calls.length
      target.resetCalls()
      ctx.unrecorded = true
      return jsonAnswer({ cleared })
    }
    case 'GET /__sim/faults':
      return jsonAnswer(target.faultConfig ?? {})
    case 'PUT /__sim/faults': {
      const faults = parseFaultConfig(bodyObject(parseBody(raw), true))
      if (typeof faults === 'string') throw new HttpError(400, faults)
      target.setFaults(Object.keys(faults).length > 0 ? faults : undefined)
      return jsonAnswer(target.faultConfig ?? {})
    }
    case 'GET /__sim/latency':
      return jsonAnswer(target.latencyModel)
    case 'PUT /__sim/latency': {
      const latency = parseLatency(bodyObject(parseBody(raw), true))
      if (typeof latency === 'string') throw new HttpError(400, latency)
      target.setLatency(latency)
      return jsonAnswer(target.latencyModel)
    }
    default:
      return jsonAnswer(
        SEEDED_SESSIONS.map(({ interviewId, description }) => ({
          interviewId,
          description,
          sessionToken: target.sessionToken(interviewId),
        })),
      )
  }
}
