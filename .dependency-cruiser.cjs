/**
 * Import rules between the service's layers, checked by `npm run lint` (dependency-cruiser).
 * Type-only imports count: a cycle of types is still a knot in the layers.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Modules form a line (routes → services → upstream/cache → domain); no import cycles.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'routes-not-upstream',
      severity: 'error',
      comment: 'Routes parse, call one service and send: the Incode client is a service’s business.',
      from: { path: '^src/routes/' },
      to: { path: '^src/upstream/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports are dependencies too.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
}
