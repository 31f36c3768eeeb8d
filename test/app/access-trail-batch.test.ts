import t from 'tap'
import { batchedSink } from '../../src/plugins/app/accessTrail.js'

/** A destination that records each write it is handed. */
function recorder(): { writes: string[]; write(line: string): boolean } {
  const writes: string[] = []
  return {
    writes,
    write(line: string) {
      writes.push(line)
      return true
    },
  }
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

void t.test('lines written in one turn of the event loop reach the destination as one write', async (t) => {
  const destination = recorder()
  const sink = batchedSink(destination)
  sink.write('{"a":1}\n')
  sink.write('{"a":2}\n')
  t.same(destination.writes, [], 'nothing is written during the turn')
  await nextTurn()
  t.same(destination.writes, ['{"a":1}\n{"a":2}\n'], 'both lines, in order, in one write')

  sink.write('{"a":3}\n')
  await nextTurn()
  t.same(destination.writes.slice(1), ['{"a":3}\n'], 'a later line goes out in the next turn')
})

void t.test('flush hands pending lines over at once, and writes nothing when none are pending', async (t) => {
  const destination = recorder()
  const sink = batchedSink(destination)
  sink.flush()
  t.same(destination.writes, [], 'no empty write')
  sink.write('{"b":1}\n')
  sink.flush()
  t.same(destination.writes, ['{"b":1}\n'], 'the pending line is written by flush')
  await nextTurn()
  t.same(destination.writes, ['{"b":1}\n'], 'and not written again when the turn ends')
})
