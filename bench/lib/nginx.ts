import { spawnSync } from 'node:child_process'
import {
  accessSync,
  chmodSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { removeAtExit, runToEnd, startChild, stopChild, waitForStatus, type Child } from './procs.js'

/**
 * nginx, the reference contender: found on PATH (or /usr/sbin), else installed with apt-get when
 * running as root. The bench runs its own instance (own config, prefix and temp dirs, in the run's
 * temp dir, bound to 127.0.0.1), never the system service.
 */
const CANDIDATES = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx']

/** Whether `file` exists and may be run (shared by the tools the bench looks for). */
export function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}

export function findNginx(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, 'nginx'))) return path.join(dir, 'nginx')
  }
  return CANDIDATES.find(isExecutable)
}

export function canInstallNginx(): boolean {
  return process.getuid?.() === 0 && isExecutable('/usr/bin/apt-get')
}

/**
 * apt-get update + install -y nginx. Debian's package would start the system service (port 80) where
 * an init system runs: a policy-rc.d that denies starts is put in place for the install (when none
 * exists) and removed afterwards.
 */
export async function installNginx(log: (line: string) => void): Promise<string> {
  if (!canInstallNginx()) throw new Error('nginx is not installed, and installing it needs root and apt-get')
  const policy = '/usr/sbin/policy-rc.d'
  const ownPolicy = !existsSync(policy)
  if (ownPolicy)
    writeFileSync(policy, '#!/bin/sh\n# bench: no service starts during the nginx install\nexit 101\n', {
      mode: 0o755,
    })
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  try {
    log('installing nginx: apt-get update')
    await runToEnd('apt-get update', '/usr/bin/apt-get', ['update'], { env, timeoutMs: 300_000 })
    log('installing nginx: apt-get install -y nginx')
    await runToEnd('apt-get install', '/usr/bin/apt-get', ['install', '-y', 'nginx'], {
      env,
      timeoutMs: 600_000,
    })
  } finally {
    if (ownPolicy) rmSync(policy, { force: true })
  }
  const found = findNginx()
  if (!found) throw new Error('apt-get installed nginx, but no nginx binary was found')
  return found
}

export async function ensureNginx(log: (line: string) => void): Promise<string> {
  return findNginx() ?? (await installNginx(log))
}

export function nginxVersion(binary: string): string {
  // nginx -v prints to stderr
  // Both are null when the binary could not be started, whatever the types say.
  const out: { stdout: string | null; stderr: string | null } = spawnSync(binary, ['-v'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 10_000,
  })
  return `${out.stderr ?? ''}${out.stdout ?? ''}`.trim() || 'unknown'
}

function versionAtLeast(version: string, wanted: [number, number, number]): boolean {
  const match = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(version)
  if (!match) return false
  const got = [Number(match[1]), Number(match[2]), Number(match[3])]
  for (const [i, want] of wanted.entries()) {
    const have = got[i] ?? 0
    if (have !== want) return have > want
  }
  return true
}

export interface NginxInstance {
  child: Child
  url: string
  version: string
  config: string
  prefix: string
}

/**
 * The start of a config for an nginx of our own: one worker, pid, logs and temp dirs inside
 * `prefix`, the `http {` block opened (the caller adds its upstream and server, and closes it).
 */
export function nginxPreamble(prefix: string): string {
  return `worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/tmp/client_body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;`
}

/**
 * nginx in front of the simulator, caching the links endpoint the way a user would configure it:
 * POST cached, the request body in the key, a cache lock, 200s kept 50 minutes (links last an
 * hour), the body buffered in memory so that `$request_body` is set. One worker process: the
 * service is one Node process, and the load tool needs the other core.
 */
export function nginxConfig(prefix: string, port: number, upstreamPort: number): string {
  return `# written by bench/lib/nginx.ts for one bench run
${nginxPreamble(prefix)}
  proxy_cache_path ${prefix}/cache levels=1:2 keys_zone=links:10m max_size=1g inactive=60m use_temp_path=off;
  upstream simulator {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    client_body_buffer_size 64k;
    client_max_body_size 64k;
    location = /__bench_ping { return 200 "ok"; }
    location / {
      proxy_pass http://simulator;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffers 64 64k;
      proxy_cache links;
      proxy_cache_methods POST;
      proxy_cache_key "$request_uri|$request_body";
      proxy_cache_valid 200 50m;
      proxy_cache_lock on;
      add_header X-Cache-Status $upstream_cache_status;
    }
  }
}
`
}

/**
 * Starts nginx with its prefix in a new temp dir of its own (removed by stopNginx). As root, nginx's
 * workers run as an unprivileged user, so the prefix (and only it) is made world-readable.
 */
export async function startNginx(binary: string, port: number, upstreamPort: number): Promise<NginxInstance> {
  const prefix = removeAtExit(mkdtempSync(path.join(os.tmpdir(), 'incode-bench-nginx-')))
  chmodSync(prefix, 0o755)
  mkdirSync(path.join(prefix, 'tmp'), { recursive: true, mode: 0o755 })
  const config = nginxConfig(prefix, port, upstreamPort)
  const configPath = path.join(prefix, 'nginx.conf')
  writeFileSync(configPath, config)
  const version = nginxVersion(binary)
  const args = ['-p', prefix, '-c', configPath, '-g', 'daemon off;']
  // -e (1.19.5+): no attempt to open the compiled-in error log before the config is read.
  if (versionAtLeast(version, [1, 19, 5])) args.push('-e', path.join(prefix, 'error.log'))
  const child = startChild('nginx', binary, args)
  const url = `http://127.0.0.1:${port}`
  try {
    await waitForStatus(`${url}/__bench_ping`, { timeoutMs: 10_000, child })
  } catch (err) {
    await stopChild(child)
    rmSync(prefix, { recursive: true, force: true })
    throw err
  }
  return { child, url, version, config, prefix }
}

export async function stopNginx(instance: NginxInstance): Promise<void> {
  await stopChild(instance.child)
  rmSync(instance.prefix, { recursive: true, force: true })
}

export function nginxErrorLog(instance: NginxInstance): string {
  try {
    return readFileSync(path.join(instance.prefix, 'error.log'), 'utf8').slice(-4000)
  } catch {
    return ''
  }
}
