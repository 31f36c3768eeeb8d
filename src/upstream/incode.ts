import type { TokenVerdicts } from '../auth/tokenVerdicts.js'
import type { Config } from '../config.js'
import { AppError, BadRequestError, UpstreamStatusError } from '../errors.js'
import { parseUpstreamBody, type AdminTokenProvider } from './adminToken.js'
import type { AnswerJudge, BreakerState } from './policy.js'
import type { RawAnswer, Transport, UpstreamEndpoint } from './transport.js'

export type IncodeEndpoint = 'images' | 'imageLinks' | 'secondIdImages' | 'concatenatedImages'

export type Caller =
  /** The service's admin token; the interview must be named (`?id=`). */
  | { kind: 'admin'; interviewId: string }
  /** A caller's own Incode token (a session token, or whatever the caller holds on drop-in paths). */
  | { kind: 'token'; token: string; interviewId?: string }

export interface CallContext {
  /** Aborted when the incoming request's client disconnects. */
  signal?: AbortSignal
  /** Epoch ms (Date.now() clock): the incoming request's total deadline. */
  deadlineAt: number
  /** The incoming request's id, sent upstream as x-request-id. */
  requestId?: string
  /** The caller's verdict on each answer for the endpoint's breaker (see UpstreamPolicy). */
  judge?: AnswerJudge
}

export interface CallOptions {
  /** Post to `/0` + path with the token alone, without x-api-key. */
  zeroPath?: boolean
}

function isSuccess(status: number): boolean {
  return status >= 200 && status <= 299
}

/**
 * The Incode image endpoints, as the service calls them. Only the service sets upstream headers:
 * whatever a caller sent never reaches Incode except its token, as X-Incode-Hardware-Id.
 */
export class IncodeClient {
  readonly #config: Config
  readonly #transport: Transport
  readonly #adminTokens: AdminTokenProvider | undefined
  readonly #tokenVerdicts: TokenVerdicts | undefined
  #callCount = 0

  constructor(deps: {
    config: Config
    transport: Transport
    adminTokens?: AdminTokenProvider
    /** Where Incode's verdicts on callers' tokens are kept, and refusals answered from. */
    tokenVerdicts?: TokenVerdicts
  }) {
    this.#config = deps.config
    this.#transport = deps.transport
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
    return this.#transport.breakerState(endpoint)
  }

  /** Spends one retry from the service-wide retry budget; false when none is left. */
  spendRetry(): boolean {
    return this.#transport.spendRetry()
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
   * POSTs `body` as JSON and returns a 2xx answer; any other status throws UpstreamStatusError.
   * An admin caller's 401 renews the admin token and retries once.
   */
  async call(
    endpoint: IncodeEndpoint,
    caller: Caller,
    body: unknown,
    ctx: CallContext,
    options?: CallOptions,
  ): Promise<RawAnswer> {
    const payload = JSON.stringify(body)
    const zeroPath = options?.zeroPath === true

    if (caller.kind === 'token') {
      const answer = await this.#sendWithToken(endpoint, caller, payload, ctx, zeroPath)
      if (isSuccess(answer.status)) return answer
      // A 403 here means the caller's token does not reach that interview: the caller's problem.
      throw statusError(endpoint, answer, answer.status === 403 ? 403 : undefined)
    }

    if (caller.interviewId === '') {
      throw new BadRequestError('An interview id is required', 'INTERVIEW_ID_REQUIRED')
    }
    const adminTokens = this.#adminTokens
    if (adminTokens === undefined) {
      throw new AppError(500, 'ADMIN_CREDENTIALS_MISSING', 'No Incode admin credentials are configured')
    }
    const token = await adminTokens.get(ctx)
    let answer = await this.#send(endpoint, token, caller.interviewId, payload, ctx, zeroPath)
    if (answer.status === 401) {
      const renewed = await adminTokens.refresh(token, ctx)
      // An unchanged token (a fixed INCODE_ADMIN_TOKEN) would only be refused again.
      if (renewed !== token)
        answer = await this.#send(endpoint, renewed, caller.interviewId, payload, ctx, zeroPath)
    }
    if (isSuccess(answer.status)) return answer
    // 401 after renewal or 403 (API key): the service's own credentials failed, not the caller's.
    throw statusError(endpoint, answer, answer.status === 401 || answer.status === 403 ? 502 : undefined)
  }

  /**
   * For drop-in paths: like call() with a caller's token, but any HTTP status comes back as it is,
   * so that the answer can be passed on exactly as Incode gave it. Transport failures still throw.
   */
  forward(
    endpoint: IncodeEndpoint,
    caller: Extract<Caller, { kind: 'token' }>,
    body: unknown,
    ctx: CallContext,
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
    ctx: CallContext,
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
    ctx: CallContext,
    zeroPath: boolean,
  ): Promise<RawAnswer> {
    const headers: Record<string, string> = {
      'api-version': this.#config.INCODE_API_VERSION,
      'content-type': 'application/json',
      'x-incode-hardware-id': token,
    }
    if (!zeroPath) headers['x-api-key'] = this.#config.INCODE_API_KEY
    this.#callCount++
    return this.#transport.request({
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
    })
  }
}

function statusError(endpoint: IncodeEndpoint, answer: RawAnswer, statusCode?: number): UpstreamStatusError {
  const message = `Incode answered ${answer.status} on ${endpoint}`
  const body = parseUpstreamBody(answer.body)
  return statusCode === undefined
    ? new UpstreamStatusError(answer.status, body, message)
    : new UpstreamStatusError(answer.status, body, message, statusCode)
}
