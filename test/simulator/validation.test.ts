import net from 'node:net'

import t from 'tap'

import { IMAGE_TYPES } from '../../src/domain/imageTypes.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { assertIncodeError, call, startSim } from './fixtures/helpers.js'

const small = SEEDED_INTERVIEW_IDS.small

void t.test('bad image lists and bodies answer 400', async (t) => {
  const sim = await startSim(t)
  const token = sim.sessionToken(small)
  for (const key of ['images', 'imageLinks', 'secondIdImages'] as const) {
    const path = sim.paths[key]
    assertIncodeError(t, await call(sim, path, { token, body: {} }), 400, path, `${key}: no images`)
    assertIncodeError(
      t,
      await call(sim, path, { token, body: { images: 'selfie' } }),
      400,
      path,
      `${key}: not an array`,
    )
    assertIncodeError(
      t,
      await call(sim, path, { token, body: { images: [] } }),
      400,
      path,
      `${key}: empty array`,
    )
    const unknown = await call(sim, path, { token, body: { images: ['selfie', 'passportScan'] } })
    assertIncodeError(t, unknown, 400, path, `${key}: unknown type`)
    t.match(unknown.json.message, /passportScan/, `${key}: the message names the unknown type`)
    assertIncodeError(
      t,
      await call(sim, path, { token, body: { images: [1] } }),
      400,
      path,
      `${key}: non-string type`,
    )
    assertIncodeError(
      t,
      await call(sim, path, { token, rawBody: '{"images": [' }),
      400,
      path,
      `${key}: invalid JSON`,
    )
    assertIncodeError(
      t,
      await call(sim, path, { token, body: ['selfie'] }),
      400,
      path,
      `${key}: body not an object`,
    )
    assertIncodeError(t, await call(sim, path, { token }), 400, path, `${key}: no body`)
  }
  const concat = sim.paths.concatenatedImages
  assertIncodeError(
    t,
    await call(sim, concat, { token, body: { images: 'x' } }),
    400,
    concat,
    'concatenated: not an array',
  )
  assertIncodeError(
    t,
    await call(sim, concat, { token, body: { images: ['nope'] } }),
    400,
    concat,
    'concatenated: unknown type',
  )
  assertIncodeError(
    t,
    await call(sim, concat, { token, rawBody: '{' }),
    400,
    concat,
    'concatenated: invalid JSON',
  )
})

void t.test('broken client requests get a clear 4xx, never a 5xx', async (t) => {
  const sim = await startSim(t)
  const path = sim.paths.images
  const token = sim.sessionToken(small)
  const headersInBody = await call(sim, path, {
    apiKey: null,
    body: { headers: { 'x-api-key': sim.apiKey }, images: ['selfie'] },
  })
  t.equal(headersInBody.status, 403, 'headers sent in the body: 403')
  const tokenAsId = await call(sim, `${path}?id=${token}`, { token, body: { images: ['selfie'] } })
  t.equal(tokenAsId.status, 403, 'a token passed as id with a session token: 403')
  const adminTokenAsId = await call(sim, `${path}?id=${token}`, {
    token: sim.adminToken(),
    body: { images: ['selfie'] },
  })
  t.equal(adminTokenAsId.status, 404, 'a token passed as id with an admin token: 404')
  const weird = await call(sim, `${path}?id=%E0%A4%A&x=%`, {
    token: sim.adminToken(),
    body: { images: ['selfie'] },
  })
  t.ok(weird.status >= 400 && weird.status < 500, 'a malformed query string answers 4xx')
  const huge = await call(sim, path, {
    token,
    body: { images: IMAGE_TYPES.map((x) => x + 'x'.repeat(10_000)) },
  })
  t.equal(huge.status, 400, 'absurd type names: 400')
  t.ok(huge.text.length < 2000, 'the error message stays short')
})

void t.test('unknown interviews and paths answer 404, wrong methods 405', async (t) => {
  const sim = await startSim(t)
  const path = sim.paths.images
  const unknown = 'aaaaaaaaaaaaaaaaaaaaaaaa'
  const admin = await call(sim, `${path}?id=${unknown}`, {
    token: sim.adminToken(),
    body: { images: ['selfie'] },
  })
  assertIncodeError(t, admin, 404, path, 'admin token, unknown interview')
  const session = await call(sim, path, { token: sim.sessionToken(unknown), body: { images: ['selfie'] } })
  assertIncodeError(t, session, 404, path, 'session token of an unknown interview')
  assertIncodeError(
    t,
    await call(sim, '/omni/get/everything', { body: {} }),
    404,
    '/omni/get/everything',
    'unknown path',
  )
  assertIncodeError(
    t,
    await call(sim, '/0/omni/nothing', { body: {} }),
    404,
    '/0/omni/nothing',
    'unknown /0 path',
  )
  const get = await call(sim, path, { method: 'GET', token: sim.sessionToken(small) })
  assertIncodeError(t, get, 405, path, 'GET on an image endpoint')
  t.equal(get.headers.get('allow'), 'POST', 'the 405 names the allowed method')
  const put = await call(sim, sim.paths.start, { method: 'PUT', body: {} })
  assertIncodeError(t, put, 405, sim.paths.start, 'PUT on start')
})

void t.test('a body over 10 MB answers 413', async (t) => {
  const sim = await startSim(t)
  const path = sim.paths.images
  const big = JSON.stringify({ images: ['selfie'], padding: 'x'.repeat(11 * 1024 * 1024) })
  const reply = await call(sim, path, { token: sim.sessionToken(small), rawBody: big })
  assertIncodeError(t, reply, 413, path, 'oversize body')
  const after = await call(sim, path, { token: sim.sessionToken(small), body: { images: ['signature'] } })
  t.equal(after.status, 200, 'the simulator keeps answering after a 413')
})

void t.test('a malformed HTTP request gets a 400 with an Incode error body', async (t) => {
  const sim = await startSim(t)
  const { port } = new URL(sim.url)
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'))
    let data = ''
    socket.on('data', (chunk: Buffer) => (data += chunk.toString()))
    socket.on('end', () => resolve(data))
    socket.on('error', reject)
  })
  t.match(answer, /^HTTP\/1\.1 400 /, 'the status line says 400')
  t.match(answer, /Processing-Time: \d+/, 'with Processing-Time')
  const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))
  t.equal(body.status, 400, 'and an Incode error body')
  t.equal(
    (await call(sim, '/omni/start', { body: {} })).status,
    200,
    'the simulator still answers afterwards',
  )
})
