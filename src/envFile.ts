/**
 * Reads `.env` (in the working directory) into process.env when the file exists, as
 * `.env.example` suggests, with Node's own parser. A variable the environment already holds is
 * kept: the real environment always wins over the file. Returns whether a file was read.
 */
export function loadEnvFileIfPresent(path = '.env'): boolean {
  try {
    process.loadEnvFile(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}
