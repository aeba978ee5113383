/**
 * The MLLP listener (serve --mllp-port): the real serve, real Redis, PostgreSQL and files, and a
 * real TCP (and TLS) socket. A VXU is answered with its run's ACK and its patient joins the Group
 * with the message id; a QBP's RSP carries the FHIR Patient id; framing survives frames split over
 * writes and frames sharing one; an unknown facility is refused at once with nothing written; a
 * dropped connection loses only the partial message; a resent message gets its reply from the
 * one run its bytes made; a run that is not done in time is answered AE 207 and is not lost.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createLogger } from '../src/config/index.ts';
import { frame, FrameDecoder, FrameTooLargeError, unwrapBatch } from '../src/mllp/index.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { startServe } from '../src/service/index.ts';
import { groupHistory, groupMembers, openStore, type Db } from '../src/store/index.ts';
import { IMMUNIZATIONS, INDEX } from './fixtures.ts';
import { quietLog, tempDir, tempPgDatabase, writeNdjson } from './helpers.ts';
import { onCleanup, REDIS_URL, testPrefix, waitFor } from './daemon-helpers.ts';
import { qbp, v2PipelineSpec, vxu } from './hl7v2-messages.ts';

const GID = 'test-clinic-mllp';

const PIPELINE = v2PipelineSpec(GID);

const PID = {
  liam: 'PID|1||r2^^^TESTCLINIC^MR||Wilson^Liam^^^^^L||20160702|M|||40 Elm Ave^^Springfield^IL^62702^^H||^PRN^PH^^^217^5550200',
  mia: 'PID|1||r4^^^TESTCLINIC^MR||O\\S\\Brien^Mia^^^^^L||20141130|F',
  jose: 'PID|1||r5^^^TESTCLINIC^MR||Nunez^Jose^^^^^L||20130203|M',
  jjr: 'PID|1||r3^^^TESTCLINIC^MR||Carter^James^^Jr^^^L||20100505|M|||9 Pine Road',
  noah: 'PID|1||r12^^^TESTCLINIC^MR||Wilson^Noah^^^^^L||20160702|M|||40 Elm Ave^^Springfield^IL^62702^^H',
};

/** One reply, read: MSH-9, MSA-1, MSA-2, ERR codes, and the text. */
function parseReply(text: string): { type: string; ack: string; echo: string; errors: string[]; text: string } {
  const segs = text.split('\r').filter(Boolean);
  const field = (id: string, n: number) => segs.find((s) => s.startsWith(`${id}|`))?.split('|')[n] ?? '';
  return { type: field('MSH', 8), ack: field('MSA', 1), echo: field('MSA', 2), errors: segs.filter((s) => s.startsWith('ERR|')).map((s) => s.split('|')[3]!.split('^')[0]!), text };
}

/** A sender on a real socket: writes bytes as told, reads framed replies in order. */
class Sender {
  readonly socket: net.Socket;
  readonly #decoder = new FrameDecoder();
  readonly #replies: string[] = [];
  readonly #waiting: ((r: string) => void)[] = [];
  closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      for (const f of this.#decoder.push(chunk)) {
        const text = f.toString('utf8');
        const w = this.#waiting.shift();
        if (w) w(text);
        else this.#replies.push(text);
      }
    });
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
  }

  static async connect(port: number, secure = false): Promise<Sender> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = secure ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => resolve(s)) : net.connect(port, '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    });
    const sender = new Sender(socket);
    onCleanup(async () => void sender.socket.destroy());
    return sender;
  }

  write(bytes: Buffer | string): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(bytes, (e) => (e ? reject(e) : resolve())));
  }

  reply(timeoutMs = 30_000): Promise<string> {
    const ready = this.#replies.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no reply in time')), timeoutMs);
      this.#waiting.push((r) => {
        clearTimeout(t);
        resolve(r);
      });
    });
  }

  async ask(message: string): Promise<ReturnType<typeof parseReply>> {
    await this.write(frame(message));
    return parseReply(await this.reply());
  }
}

async function serveWithMllp(o: { concurrency?: number; replyTimeoutMs?: number; maxMessageBytes?: number; tls?: { cert: Buffer; key: Buffer } } = {}) {
  const dir = await tempDir();
  const drop = path.join(dir, 'drop');
  const data = path.join(dir, 'data');
  const databaseUrl = await tempPgDatabase();
  const seed = await openStore({ databaseUrl, embeddedDir: path.join(data, 'db') });
  await loadIndexFile(seed, await writeNdjson(path.join(dir, 'Patient.ndjson'), INDEX));
  await loadIndexFile(seed, await writeNdjson(path.join(dir, 'Immunization.ndjson'), IMMUNIZATIONS));
  await seed.close();
  const pipelines = path.join(dir, 'pipelines');
  await fs.mkdir(pipelines);
  await fs.writeFile(path.join(pipelines, 'test-clinic.yaml'), stringify(PIPELINE));
  await fs.mkdir(path.join(drop, 'test-clinic', 'inbound'), { recursive: true });
  const service = await startServe({
    dropRoot: drop,
    dataDir: data,
    pipelinesDir: pipelines,
    redisUrl: REDIS_URL,
    queuePrefix: testPrefix(),
    databaseUrl,
    port: 0,
    quietMs: 300,
    scanIntervalMs: 150,
    reconcileIntervalMs: 1000,
    ...(o.concurrency !== undefined ? { concurrency: o.concurrency } : {}),
    mllp: { port: 0, replyTimeoutMs: o.replyTimeoutMs ?? 30_000, ...(o.maxMessageBytes ? { maxMessageBytes: o.maxMessageBytes } : {}), ...(o.tls ? { tls: o.tls } : {}) },
    log: process.env.MLLP_TEST_LOG ? createLogger('info') : quietLog,
  });
  onCleanup(async () => void (await service.close()));
  return {
    service,
    db: service.db,
    port: service.mllp!.port,
    drop,
    data,
    databaseUrl,
    inbound: path.join(drop, 'test-clinic', 'inbound'),
    outbound: path.join(drop, 'test-clinic', 'outbound'),
  };
}

const runsOf = async (db: Db, sha256: string) => (await db.query<{ id: string; file_name: string; state: string }>('SELECT id, file_name, state FROM run WHERE file_sha256 = $1', [sha256])).rows;
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const listing = async (dir: string) => (await fs.readdir(dir).catch(() => [] as string[])).sort();

describe('MLLP framing', () => {
  it('takes frames split over chunks and several in one, ignores bytes outside frames, and refuses one past the limit', () => {
    const d = new FrameDecoder(64);
    const bytes = Buffer.concat([Buffer.from('\r\n'), frame('A1'), Buffer.from('noise'), frame('B22'), frame('C333')]);
    const got: string[] = [];
    for (let i = 0; i < bytes.length; i += 3) got.push(...d.push(bytes.subarray(i, i + 3)).map((b) => b.toString()));
    expect(got).toEqual(['A1', 'B22', 'C333']);
    expect(d.push(Buffer.concat([frame('x'), frame('y')])).map(String)).toEqual(['x', 'y']);
    d.push(Buffer.from('\x0bpartial'));
    expect(d.partialBytes).toBe(7);
    expect(d.push(Buffer.from('\x0bagain\x1c\r')).map(String)).toEqual(['again']);
    expect(() => d.push(Buffer.concat([Buffer.of(0x0b), Buffer.alloc(65, 0x41)]))).toThrow(FrameTooLargeError);
    expect(unwrapBatch(Buffer.from('FHS|^~\\&|a\rBHS|^~\\&|b\rMSH|^~\\&|x\rMSA|AA|1\rBTS|1\rFTS|1\r')).toString()).toBe('MSH|^~\\&|x\rMSA|AA|1\r');
  });
});

describe('serve --mllp-port', () => {
  it('answers each message with its run\'s reply, in order, over a real socket; refuses unknown facilities at once; loses nothing acknowledged', async () => {
    const s = await serveWithMllp();
    const a = await Sender.connect(s.port);

    // A VXU: its run's ACK AA echoing MSH-10; Liam joins the Group by this message.
    const m1 = vxu('MLLP-1', PID.liam);
    const r1 = await a.ask(m1);
    expect([r1.type, r1.ack, r1.echo]).toEqual(['ACK^V04^ACK', 'AA', 'MLLP-1']);
    expect((await groupHistory(s.db, GID)).map((e) => [e.patientId, e.ref])).toEqual([['p-liam', 'MLLP-1']]);
    const [run1] = await runsOf(s.db, sha(m1));
    expect(run1!.file_name).toMatch(/^mllp-\d{8}T\d{9}Z-MLLP-1-[0-9a-f]{8}\.hl7$/);
    expect(run1!.state).toBe('completed');

    // A QBP: an RSP that carries Ava's FHIR Patient id in PID-3 (and her immunizations).
    const r2 = await a.ask(qbp('MLLP-2', 'r1^^^TESTCLINIC^MR|Martinez^Ava^^^^^L||20150314|F|12 Oak St^^Springfield^IL^62701^^H'));
    expect([r2.type, r2.ack, r2.echo]).toEqual(['RSP^K11^RSP_K11', 'AA', 'MLLP-2']);
    expect(r2.text).toContain('|Z32^CDCPHINVS');
    expect(r2.text).toMatch(/\rPID\|1\|\|p-ava\^\^\^IIS-FHIR\^PI/);
    expect(r2.text.match(/\rRXA\|/g)).toHaveLength(2);

    // Two frames in one write (with bytes outside frames between), then one frame split over many writes.
    await a.write(Buffer.concat([frame(vxu('MLLP-3', PID.jose)), Buffer.from('\r\n'), frame(vxu('MLLP-4', PID.jjr))]));
    const split = frame(vxu('MLLP-5', PID.noah));
    for (let i = 0; i < split.length; i += 17) {
      await a.write(split.subarray(i, i + 17));
      await new Promise((r) => setTimeout(r, 2));
    }
    const [r3, r4, r5] = [parseReply(await a.reply()), parseReply(await a.reply()), parseReply(await a.reply())];
    expect([r3, r4, r5].map((r) => [r.ack, r.echo])).toEqual([
      ['AA', 'MLLP-3'],
      ['AA', 'MLLP-4'],
      ['AA', 'MLLP-5'],
    ]);

    // An unknown facility: AR at once, ERR 103 at MSH-4, nothing written anywhere.
    const before = Date.now();
    const unknown = vxu('MLLP-6', PID.mia, 'ELSEWHERE');
    const r6 = await a.ask(unknown);
    expect(Date.now() - before).toBeLessThan(2000);
    expect([r6.ack, r6.echo, r6.errors]).toEqual(['AR', 'MLLP-6', ['103']]);
    expect(r6.text).toMatch(/\rERR\|\|MSH\^1\^4/);
    // Unreadable: no MSH at all.
    const r6b = parseReply(await (async () => (await a.write(frame('hello')), a.reply()))());
    expect(r6b.ack).toBe('AR');
    expect(await runsOf(s.db, sha(unknown))).toEqual([]);

    // A resent identical message: the same reply from the one run its bytes made (a duplicate note, no second run).
    const again = await a.ask(m1);
    expect([again.ack, again.echo]).toEqual(['AA', 'MLLP-1']);
    expect(again.text).toBe(r1.text);
    expect(await runsOf(s.db, sha(m1))).toHaveLength(1);
    expect((await listing(s.outbound)).filter((n) => n.endsWith('.duplicate.txt'))).toHaveLength(1);

    // A second connection: one message acknowledged, then the connection drops mid-message.
    const b = await Sender.connect(s.port);
    const rb = await b.ask(vxu('MLLP-7', PID.mia));
    expect([rb.ack, rb.echo]).toEqual(['AA', 'MLLP-7']);
    const partial = frame(vxu('MLLP-8', 'PID|1||r20^^^TESTCLINIC^MR||Carter^James^^Sr^^^L||19800120|M'));
    await b.write(partial.subarray(0, partial.length - 30));
    b.socket.destroy();
    await waitFor('the connection to close', async () => b.closed);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await s.db.query("SELECT id FROM run WHERE file_name LIKE '%MLLP-8%'")).rows).toEqual([]);
    expect(await listing(s.inbound)).toEqual([]);
    expect(await listing(path.join(s.drop, '.mllp-tmp'))).toEqual([]);
    // Everything acknowledged is in the Group, each by its message; MLLP-8 never was.
    expect((await groupMembers(s.db, GID)).map((m) => m.patientId)).toEqual(['p-jjr', 'p-jose', 'p-liam', 'p-mia', 'p-noah']);
    expect((await groupHistory(s.db, GID)).map((e) => e.ref).sort()).toEqual(['MLLP-1', 'MLLP-3', 'MLLP-4', 'MLLP-5', 'MLLP-7']);
    // Each message's outputs in outbound, as a dropped file's are.
    expect((await listing(s.outbound)).filter((n) => n.endsWith('.replies.hl7'))).toHaveLength(6);

    // The first connection still works after all that.
    const last = await a.ask(vxu('MLLP-9', PID.liam.replace('r2^', 'r2b^')));
    expect(last.echo).toBe('MLLP-9');
  });

  it('answers AE 207 when the run is not done in time, and the message is still processed; TLS when given a certificate', async () => {
    const keys = await selfSigned();
    // No match workers: runs wait in the queue, so no reply comes in time.
    const s = await serveWithMllp({ concurrency: 0, replyTimeoutMs: 800, maxMessageBytes: 4096, ...(keys ? { tls: keys } : {}) });
    expect(s.service.mllp!.tls).toBe(!!keys);
    const a = await Sender.connect(s.port, !!keys);
    const message = vxu('SLOW-1', PID.liam);
    const r = await a.ask(message);
    expect([r.type, r.ack, r.echo, r.errors]).toEqual(['ACK^V04^ACK', 'AE', 'SLOW-1', ['207']]);
    expect(r.text).toContain('accepted, reply not ready');
    // Never lost: its run is recorded and waits for a worker.
    const runs = await waitFor('the run', async () => {
      const rows = await runsOf(s.db, sha(message));
      return rows.length === 1 && rows;
    });
    expect(['received', 'parsing', 'matching']).toContain(runs[0]!.state);
    // The unknown facility is still answered at once over the same connection.
    expect((await a.ask(vxu('SLOW-2', PID.mia, 'ELSEWHERE'))).ack).toBe('AR');
    // A message over the limit closes the connection; nothing of it is written.
    await a.write(frame(vxu('BIG-1', `${PID.mia}|${'X'.repeat(5000)}`)));
    await waitFor('the connection to close', async () => a.closed, 5000);
    expect(await listing(s.inbound)).toEqual([]);
    expect((await s.db.query("SELECT id FROM run WHERE file_name LIKE '%BIG-1%'")).rows).toEqual([]);
  });

  it('on shutdown, a message waiting for its run is answered AE 207 and the connection closed; the run is kept', async () => {
    const s = await serveWithMllp({ concurrency: 0, replyTimeoutMs: 60_000 });
    const a = await Sender.connect(s.port);
    const message = vxu('STOP-1', PID.jose);
    await a.write(frame(message));
    await waitFor('the run', async () => (await runsOf(s.db, sha(message))).length === 1);
    const started = Date.now();
    const [problems, reply] = await Promise.all([s.service.close(), a.reply(10_000)]);
    expect(problems).toEqual([]);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(parseReply(reply)).toMatchObject({ ack: 'AE', echo: 'STOP-1', errors: ['207'] });
    await waitFor('the connection to close', async () => a.closed, 5000);
    const db = await openStore({ databaseUrl: s.databaseUrl, embeddedDir: '' });
    onCleanup(() => db.close());
    const runs = await runsOf(db, sha(message));
    expect(runs).toHaveLength(1);
    expect(['received', 'parsing', 'matching']).toContain(runs[0]!.state);
  });
});

/** A throwaway self-signed certificate, or undefined where openssl is not installed. */
async function selfSigned(): Promise<{ cert: Buffer; key: Buffer } | undefined> {
  const dir = await tempDir();
  const [key, cert] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')];
  try {
    await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost']);
  } catch {
    return undefined;
  }
  return { cert: await fs.readFile(cert), key: await fs.readFile(key) };
}
