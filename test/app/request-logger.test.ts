import { Writable } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import pino from 'pino'
import t from 'tap'
import { lazyChildLogger } from '../../src/plugins/app/requestLogger.js'

/** A real pino root logger writing into memory, counting the child loggers made from it. */
function rootLogger(level: string) {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  const root = pino({ level }, stream)
  const counted = { made: 0 }
  // Children are made from their parent's prototype chain: `this` is whichever logger is asked.
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called with its `this` below
  const original = root.child
  root.child = function (this: typeof root, bindings, options) {
    counted.made++
    return original.call(this, bindings, options)
  } as typeof root.child
  return { root: root as unknown as FastifyBaseLogger, lines, counted }
}

t.test('no child logger is made until a line is written at an enabled level', async (t) => {
  const { root, lines, counted } = rootLogger('warn')
  const log = lazyChildLogger(root, { reqId: 'req-1' }, {})
  log.info('incoming request')
  log.debug('details')
  log.trace('more details')
  t.equal(counted.made, 0, 'lines below the level make no child logger')
  t.equal(lines.length, 0, 'and write nothing')
  t.equal(log.level, 'warn', 'the level reads as the parent’s')

  log.warn({ code: 'X' }, 'something to see')
  log.error('and worse')
  t.equal(counted.made, 1, 'the first enabled line makes the child logger, once')
  t.equal(lines.length, 2, 'both lines are written')
  t.equal(lines[0]?.reqId, 'req-1', 'with the request id binding')
  t.equal(lines[0]?.code, 'X', 'with the line’s own fields')
  t.equal(lines[0]?.msg, 'something to see', 'and its message')
})

t.test('a route’s own log level (the child options) decides what is written', async (t) => {
  const { root, lines, counted } = rootLogger('info')
  const quiet = lazyChildLogger(root, { reqId: 'req-2' }, { level: 'warn' })
  quiet.info('not at this route’s level')
  t.equal(counted.made, 0, 'info below the route’s warn makes no child')
  t.equal(quiet.level, 'warn', 'the level reads as the route’s')
  const loud = lazyChildLogger(root, { reqId: 'req-3' }, { level: 'debug' })
  loud.debug('at this route’s level')
  t.equal(counted.made, 1, 'debug at a debug route makes the child')
  t.equal(lines[0]?.reqId, 'req-3', 'and writes the line with its binding')
  t.equal(lines[0]?.level, 20, 'at debug')
})

t.test('child() of a request logger carries the request binding', async (t) => {
  const { root, lines } = rootLogger('info')
  const log = lazyChildLogger(root, { reqId: 'req-4' }, {})
  log.child({ part: 1 }).info('from a part')
  t.equal(lines[0]?.reqId, 'req-4', 'the request id is kept')
  t.equal(lines[0]?.part, 1, 'with the child’s own binding')
})
