export { Transport, toUpstreamError, type RawAnswer, type TransportCall } from './transport.js'
export { AdminTokenProvider, jwtExpiryMs, parseUpstreamBody, type TokenContext } from './adminToken.js'
export {
  IncodeClient,
  type CallContext,
  type CallOptions,
  type Caller,
  type IncodeEndpoint,
} from './incode.js'
