import t from 'tap'

import { startSim, call, fetchImages } from './fixtures/helpers.js'

const ID = 'abcdef0123456789abcdef01'

void t.test('synthetic interviews: off by default, an unknown ID is not found', async (t) => {
  const sim = await startSim(t)
  const reply = await fetchImages(sim, ID, ['selfie'], sim.paths.imageLinks)
  t.equal(reply.status, 404, 'an unknown interview answers 404 without the option')
})

void t.test('synthetic interviews: any well-formed ID answers links, deterministically', async (t) => {
  const sim = await startSim(t, { syntheticInterviews: true })
  const types = ['selfie', 'fullFrameFrontID', 'signature', 'document']
  const first = await fetchImages(sim, ID, types, sim.paths.imageLinks)
  t.equal(first.status, 200, 'a well-formed unknown ID answers 200 with the option')
  t.match(first.json.selfie, new RegExp(`^${sim.url}/files/${ID}/selfie/\\d+\\.jpg\\?`), 'selfie is a link')
  t.ok(first.json.fullFrameFrontID, 'the front ID has a link')
  t.ok(first.json.signature, 'the signature has a link')
  t.notOk('document' in first.json, 'a type the synthetic session lacks is omitted')
  const again = await fetchImages(sim, ID, types, sim.paths.imageLinks)
  t.same(
    Object.keys(again.json.selfie_prevAttempts),
    Object.keys(first.json.selfie_prevAttempts),
    'the same ID gives the same capture times',
  )
  const other = await fetchImages(sim, 'abcdef0123456789abcdef02', ['selfie'], sim.paths.imageLinks)
  t.not(other.json.selfie, first.json.selfie, 'another ID gives other links')
  const file = await fetch(first.json.selfie as string)
  const bytes = Buffer.from(await file.arrayBuffer())
  t.equal(file.status, 200, 'the link serves the picture')
  t.equal(bytes.subarray(0, 2).toString('hex'), 'ffd8', 'the picture is a JPEG')
  const malformed = await fetchImages(sim, 'not-an-interview', ['selfie'], sim.paths.imageLinks)
  t.equal(malformed.status, 404, 'a malformed ID is still not found')
})

void t.test('synthetic interviews: start still creates a fresh interview', async (t) => {
  const sim = await startSim(t, { syntheticInterviews: true })
  const reply = await call(sim, sim.paths.start, { body: {} })
  t.equal(reply.status, 200, 'start answers 200')
  t.match(reply.json.interviewId, /^[0-9a-f]{24}$/, 'start names a new interview')
})
