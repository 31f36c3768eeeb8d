export {
  Transport,
  toUpstreamError,
  type RawAnswer,
  type TransportCall,
  type TransportOptions,
  type UpstreamEndpoint,
} from './transport.js'
export { UpstreamPolicy, isBreakerFailure, type BreakerState, type PolicyCall } from './policy.js'
export {
  RETRYABLE_ERROR_CODES,
  RETRYABLE_METHODS,
  RETRYABLE_STATUSES,
  RETRY_BUDGET_MAX_SAVED,
  RETRY_BUDGET_MIN_PER_SEC,
  RetryBudget,
  backoffMs,
  parseRetryAfterMs,
} from './retry.js'
export { AdminTokenProvider, jwtExpiryMs, parseUpstreamBody, type TokenContext } from './adminToken.js'
export {
  IncodeClient,
  type CallContext,
  type CallOptions,
  type Caller,
  type IncodeEndpoint,
} from './incode.js'
