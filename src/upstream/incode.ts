import type { TokenVerdicts } from '../auth/tokenVerdicts.js'
import type { Config } from '../config.js'
import { parseUpstreamBody } from '../domain/upstreamBody.js'
import { AdminNotConfiguredError, BadRequestError, UpstreamStatusError } from '../errors.js'
import type { Credential } from '../upstreamAnswers.js'
import type { UpstreamPolicy } from './policy.js'
import type {
  AdminTokens,
  BreakerState,
  CallOptions,
  Caller,
  IncodeEndpoint,
  RawAnswer,
  UpstreamCallContext,
  UpstreamEndpoint,
} from './types.js'

function isSuccess(status: number): boolean {
  return status >= 200 && status <= 299
}

/**
 * The Incode image endpoints, as the service calls them. Only the service sets upstream headers:
 * whatever a caller sent never reaches Incode except its token, as X-Incode-Hardware-Id.
 */
export class IncodeClient {
  readonly #config: Config
  readonly #policy: UpstreamPolicy
  readonly #adminTokens: AdminTokens | undefined
  readonly #tokenVerdicts: TokenVerdicts | undefined
  #callCount = 0

  constructor(deps: {
    config: Config
    /** Every call goes through the policy (breaker, bulkhead, budget, retries), then the transport. */
    policy: UpstreamPolicy
    /** The service's admin token, for admin callers (AdminTokenProvider). */
    adminTokens?: AdminTokens
    /** Where Incode's verdicts on callers' tokens are kept, and refusals answered from. */
    tokenVerdicts?: TokenVerdicts
  }) {
    this.#config = deps.config
    this.#policy = deps.policy
    this.#adminTokens = deps.adminTokens
    this.#tokenVerdicts = deps.tokenVerdicts
  }

  /**
   * Upstream calls to the image endpoints, the re-send after an admin 401 included; the transport's
   * own retries (503, 504, connection failures) and log-ins are not counted.
   */
  get callCount(): number {
    return this.#callCount
  }

  /**
   * The circuit breaker's state of one upstream endpoint (each has its own; default the base64
   * images'). While 'open', calls to it fail fast with CircuitOpenError (503, Retry-After: the
   * time left); 'half-open' means the next call goes through as the probe.
   */
  breakerState(endpoint: UpstreamEndpoint = 'images'): BreakerState {
    return this.#policy.breakerState(endpoint)
  }

  /** Spends one retry from the service-wide retry budget; false when none is left. */
  spendRetry(): boolean {
    return this.#policy.spendRetry()
  }

  pathOf(endpoint: IncodeEndpoint): string {
    switch (endpoint) {
      case 'images':
        return this.#config.INCODE_PATH_IMAGES
      case 'imageLinks':
        return this.#config.INCODE_PATH_IMAGE_LINKS
      case 'secondIdImages':
        return this.#config.INCODE_PATH_SECOND_ID_IMAGES
      case 'concatenatedImages':
        return this.#config.INCODE_PATH_CONCATENATED_IMAGES
    }
  }

  /**
   * POSTs `body` as JSON and returns a 2xx answer; any other status throws UpstreamStatusError
   * with the facts (which credential was used), which upstreamAnswers.ts maps to an answer. An
   * admin caller's 401 renews the admin token and retries once.
   */
  async call(
    endpoint: IncodeEndpoint,
    caller: Caller,
    body: unknown,
    ctx: UpstreamCallContext,
    options?: CallOptions,
  ): Promise<RawAnswer> {
    const payload = JSON.stringify(body)
    const zeroPath = options?.zeroPath === true

    if (caller.kind === 'token') {
      const answer = await this.#sendWithToken(endpoint, caller, payload, ctx, zeroPath)
      if (isSuccess(answer.status)) return answer
      throw statusError(endpoint, answer, 'caller-token')
    }

    if (caller.interviewId === '') {
      throw new BadRequestError('An interview id is required', 'INTERVIEW_ID_REQUIRED')
    }
    const adminTokens = this.#adminTokens
    if (adminTokens === undefined) throw new AdminNotConfiguredError()
    const token = await adminTokens.get(ctx)
    let answer = await this.#send(endpoint, token, caller.interviewId, payload, ctx, zeroPath)
    if (answer.status === 401) {
      const renewed = await adminTokens.refresh(token, ctx)
      // An unchanged token (a fixed INCODE_ADMIN_TOKEN) would only be refused again.
      if (renewed !== token)
        answer = await this.#send(endpoint, renewed, caller.interviewId, payload, ctx, zeroPath)
    }
    if (isSuccess(answer.status)) return answer
    throw statusError(endpoint, answer, 'admin-token')
  }

  /**
   * For drop-in paths: like call() with a caller's token, but any HTTP status comes back as it is,
   * so that the answer can be passed on exactly as Incode gave it. Transport failures still throw.
   */
  forward(
    endpoint: IncodeEndpoint,
    caller: Extract<Caller, { kind: 'token' }>,
    body: unknown,
    ctx: UpstreamCallContext,
    options?: CallOptions,
  ): Promise<RawAnswer> {
    return this.#sendWithToken(endpoint, caller, JSON.stringify(body), ctx, options?.zeroPath === true)
  }

  /**
   * A call with a caller's token. A refusal Incode gave lately to the same token, in the same form
   * of call, is answered again without calling; every answer is recorded as Incode's verdict.
   */
  async #sendWithToken(
    endpoint: IncodeEndpoint,
    caller: Extract<Caller, { kind: 'token' }>,
    payload: string,
    ctx: UpstreamCallContext,
    zeroPath: boolean,
  ): Promise<RawAnswer> {
    const use = { endpoint, zeroPath, interviewId: caller.interviewId }
    const refused = this.#tokenVerdicts?.refusal(caller.token, use)
    if (refused) return refused
    const answer = await this.#send(endpoint, caller.token, caller.interviewId, payload, ctx, zeroPath)
    this.#tokenVerdicts?.record(caller.token, use, answer)
    return answer
  }

  #send(
    endpoint: IncodeEndpoint,
    token: string,
    interviewId: string | undefined,
    payload: string,
    ctx: UpstreamCallContext,
    zeroPath: boolean,
  ): Promise<RawAnswer> {
    const headers: Record<string, string> = {
      'api-version': this.#config.INCODE_API_VERSION,
      'content-type': 'application/json',
      'x-incode-hardware-id': token,
    }
    if (!zeroPath) headers['x-api-key'] = this.#config.INCODE_API_KEY
    this.#callCount++
    return this.#policy.request({
      endpoint,
      method: 'POST',
      path: zeroPath ? `/0${this.pathOf(endpoint)}` : this.pathOf(endpoint),
      query: { id: interviewId },
      headers,
      body: payload,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      ...(ctx.requestId !== undefined ? { requestId: ctx.requestId } : {}),
      deadlineAt: ctx.deadlineAt,
      ...(ctx.judge ? { judge: ctx.judge } : {}),
      ...(ctx.streamBody ? { streamBody: ctx.streamBody } : {}),
    })
  }
}

function statusError(
  endpoint: IncodeEndpoint,
  answer: RawAnswer,
  credential: Credential,
): UpstreamStatusError {
  return new UpstreamStatusError({
    status: answer.status,
    body: parseUpstreamBody(answer.body),
    endpoint,
    credential,
  })
}
