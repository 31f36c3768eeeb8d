/** Incode's answer body when it is JSON, else its text (an HTML page, a gateway's message). */
export function parseUpstreamBody(body: Buffer): unknown {
  const text = body.toString('utf8')
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}
