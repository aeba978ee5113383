/** GET /healthz: Redis, database and watcher, each checked for real; 503 when any is down. */
import Fastify, { type FastifyInstance } from 'fastify';

export type Check = () => Promise<boolean>;

export async function startHealthServer(opts: { host: string; port: number; checks: Record<string, Check> }): Promise<{ server: FastifyInstance; url: string }> {
  const server = Fastify({ logger: false });
  server.get('/healthz', async (_req, reply) => {
    const results = Object.fromEntries(
      await Promise.all(
        Object.entries(opts.checks).map(async ([name, check]) => {
          const ok = await Promise.race([check().catch(() => false), new Promise<boolean>((r) => setTimeout(() => r(false), 2000))]);
          return [name, ok ? 'ok' : 'down'] as const;
        }),
      ),
    );
    const healthy = Object.values(results).every((v) => v === 'ok');
    return reply.code(healthy ? 200 : 503).send({ status: healthy ? 'ok' : 'degraded', ...results });
  });
  const url = await server.listen({ host: opts.host, port: opts.port });
  return { server, url };
}
