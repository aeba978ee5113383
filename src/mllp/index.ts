/**
 * The MLLP listener (`serve --mllp-port`): HL7 v2 VXU and QBP messages in real time, over TCP or
 * TLS, into the same queue as dropped files, one ACK or RSP back per message on the same
 * connection.
 *
 * Each framed message's MSH is read first. A message whose MSH cannot be read or is refused (an
 * unsupported type, version or processing id), whose MSH-4.1 is no hl7v2 partner's
 * `sendingFacility`, or whose partner cannot take it, is answered at once with an ACK AR and
 * nothing is written. Any other is written as a one-message file into the partner's inbound
 * folder (deliver.ts) and handed to intake; its reply is the run's. When the run has not finished
 * within the reply timeout, the answer is an ACK AE with ERR 207: the message was accepted and is
 * not lost — its replies file lands in outbound, and the same message sent again gets its reply.
 *
 * Within a connection messages are answered one at a time, in order; connections run in parallel.
 * A connection that drops mid-message loses only that partial message (nothing of it is written);
 * messages received whole and not yet begun are not taken either (never acknowledged, so the
 * sender sends them again). Logs carry connection ids, remote addresses, control ids, sizes and
 * sha256 hashes, never a message's content.
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import type { Logger } from '../config/index.ts';
import { ack } from '../hl7v2/reply.ts';
import { readMessage } from '../hl7v2/read.ts';
import type { MessageHeader, V2Error } from '../hl7v2/types.ts';
import type { ClaimOutcome } from '../intake/claim.ts';
import { partnerFolderProblem } from '../intake/drop.ts';
import { REPLY_SENDER } from '../results/replies.ts';
import type { Db } from '../store/index.ts';
import { awaitReply, clearStaleTemporaries, messageFileName, writeToInbound } from './deliver.ts';
import { frame, FrameDecoder, FrameTooLargeError } from './framing.ts';
import { FacilityDirectory } from './partners.ts';

export { frame, FrameDecoder, FrameTooLargeError } from './framing.ts';
export { unwrapBatch } from './deliver.ts';

export interface MllpOptions {
  /** 0 picks a free port. */
  port: number;
  /** @defaultValue 127.0.0.1: messages carry patient data, so the listener is not on the network unless asked. */
  host?: string;
  /** TLS with this certificate chain and key (PEM); plain TCP when absent. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  dropRoot: string;
  pipelinesDir: string;
  /** Where a run's export goes when its outputs are written again (restoreOutputs). */
  exportsDir: string;
  db: Db;
  log: Logger;
  /**
   * Intake of a written file, now (serve's claim + enqueue). Without it the watcher takes the
   * file at its next listing, once its quiet period has passed.
   */
  claim?: (partner: string, file: string) => Promise<ClaimOutcome>;
  /** How long a message waits for its run's reply before the ACK AE 207 "not ready". @defaultValue 60000 */
  replyTimeoutMs?: number;
  /** The longest message taken; a longer frame closes the connection. @defaultValue 1 MiB */
  maxMessageBytes?: number;
  /** How often a waiting message looks for its run's reply. @defaultValue 100 */
  pollMs?: number;
}

export interface MllpListener {
  host: string;
  port: number;
  tls: boolean;
  /** Idempotent; resolves with the problems met on the way down (empty when clean). */
  close(): Promise<string[]>;
}

/**
 * Frames received and not yet answered on one connection before it stops reading: a sender that
 * does not wait for its ACKs is slowed to our pace instead of filling memory. @defaultValue 8
 */
const MAX_QUEUED_FRAMES = 8;

/** How long shutdown lets connections send their last answers before cutting them. */
const CLOSE_GRACE_MS = 2000;

export const DEFAULT_MLLP_REPLY_TIMEOUT_MS = 60_000;
export const DEFAULT_MLLP_MAX_MESSAGE_BYTES = 1024 * 1024;

/** The segments that begin a message or an envelope: a frame carries exactly one MSH and none of the others. */
const HEADER_SEGMENT = /^(MSH|FHS|BHS|BTS|FTS)(?![A-Za-z0-9])/;

interface Connection {
  id: number;
  remote: string;
  socket: net.Socket;
  /** Cut when the connection closes or the listener shuts down: a waiting message stops waiting. */
  abort: AbortController;
  /** The chain of this connection's messages, one at a time. */
  queue: Promise<void>;
  queued: number;
  open: boolean;
}

export async function startMllpListener(o: MllpOptions): Promise<MllpListener> {
  const log = o.log;
  const host = o.host ?? '127.0.0.1';
  const replyTimeoutMs = o.replyTimeoutMs ?? DEFAULT_MLLP_REPLY_TIMEOUT_MS;
  const maxBytes = o.maxMessageBytes ?? DEFAULT_MLLP_MAX_MESSAGE_BYTES;
  const facilities = new FacilityDirectory(o.pipelinesDir, log);
  const connections = new Set<Connection>();
  let seq = 0;
  let closing = false;
  await clearStaleTemporaries(o.dropRoot, log);

  /** Our MSH-10 for an answer given here (the run's replies carry their own). */
  const controlId = () => `RM${randomBytes(8).toString('hex').toUpperCase()}`;
  const answer = (header: Partial<MessageHeader>, code: 'AR' | 'AE', errors: V2Error[]): Buffer =>
    Buffer.from(ack({ request: header, controlId: controlId(), now: new Date(), sender: REPLY_SENDER, code, errors }), 'utf8');
  const internal = (message: string): V2Error => ({ code: 207, severity: 'E', message });

  /** The reply to one message: at once when it is refused, else its run's. */
  const handle = async (bytes: Buffer, conn: Connection): Promise<Buffer> => {
    const started = Date.now();
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const text = new TextDecoder('utf-8').decode(bytes);
    const read = readMessage(text, 1);
    const header: Partial<MessageHeader> = read.ok ? read.message.header : read.header;
    const meta = { conn: conn.id, remote: conn.remote, controlId: logSafe(header.controlId), bytes: bytes.length, sha256 };
    const refuse = (code: 'AR' | 'AE', errors: V2Error[], reason: string) => {
      log.info({ ...meta, ack: code, reason }, 'mllp: message refused; nothing written');
      return answer(header, code, errors);
    };

    const heads = text.split(/\r\n|\r|\n/).filter((s) => HEADER_SEGMENT.test(s));
    if (heads.length > 1 || (heads[0] !== undefined && !heads[0].startsWith('MSH'))) {
      return refuse('AR', [{ code: 100, severity: 'E', message: 'one message per MLLP frame: no batch or file envelope, no second MSH' }], 'not one message');
    }
    if (!read.ok && read.ack === 'AR') return refuse('AR', read.errors, 'header refused');
    const facility = firstComponent(header.sendingFacility ?? '', header.delimiters?.component ?? '^');
    const found = await facilities.lookup(facility);
    if (found.kind === 'ambiguous') {
      log.error({ ...meta, partners: found.partners }, 'mllp: several hl7v2 pipelines name this sending facility; its messages are refused until one does');
      return refuse('AR', [internal('the sending facility cannot be told apart from another partner\'s; the IIS has been told')], 'facility ambiguous');
    }
    if (found.kind === 'unknown') {
      return refuse('AR', [{ code: 103, severity: 'E', location: { segment: 'MSH', sequence: 1, field: 4 }, message: 'MSH-4 is not the sending facility of any partner' }], 'unknown facility');
    }
    const pipeline = found.pipeline;
    const partner = pipeline.partner;
    const name = messageFileName(header.controlId ?? '');
    if (!path.matchesGlob(name, pipeline.file.namePattern)) {
      log.warn({ ...meta, partner, namePattern: pipeline.file.namePattern }, 'mllp: the partner\'s file.namePattern refuses MLLP message files (mllp-*.hl7); its messages are refused');
      return refuse('AR', [internal('this partner\'s messages are not taken over MLLP; the IIS has been told')], 'name pattern');
    }
    let problem: string | null;
    try {
      problem = await partnerFolderProblem(o.dropRoot, partner);
    } catch (e) {
      problem = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'the partner has no drop folder' : (e as Error).message;
    }
    if (problem) {
      log.error({ ...meta, partner, problem }, 'mllp: the partner\'s drop folder cannot be used; its messages are refused');
      return refuse('AR', [internal('the IIS cannot take this partner\'s messages at the moment; the IIS has been told')], 'drop folder');
    }

    let file: string;
    try {
      file = await writeToInbound(o.dropRoot, partner, name, bytes);
    } catch (e) {
      log.error({ ...meta, partner, err: (e as Error).message }, 'mllp: the message could not be written; refused');
      return refuse('AE', [internal('the message could not be stored; send it again later')], 'write failed');
    }
    log.info({ ...meta, partner, file: name }, 'mllp: message written to inbound');
    const got = await awaitReply(
      { db: o.db, log, exportsDir: o.exportsDir, ...(o.claim ? { claim: o.claim } : {}), timeoutMs: replyTimeoutMs, pollMs: o.pollMs ?? 100, signal: conn.abort.signal },
      { partner, file, sha256 },
    );
    const ms = Date.now() - started;
    switch (got.kind) {
      case 'reply':
        log.info({ ...meta, partner, runId: got.runId, ...(got.duplicateOf ? { duplicateOf: got.duplicateOf } : {}), ms }, 'mllp: answered with the run\'s reply');
        return got.reply;
      case 'pending':
        log.warn({ ...meta, partner, ...(got.runId ? { runId: got.runId } : {}), ms }, 'mllp: reply not ready in time; answered AE 207 (the run goes on; its replies file lands in outbound)');
        return answer(header, 'AE', [internal('accepted, reply not ready: the message is queued and will be processed; its reply will be in the outbound folder, and sending the same message again returns it')]);
      case 'failed':
        log.warn({ ...meta, partner, runId: got.runId, ms }, 'mllp: the message\'s run failed; answered AE 207');
        return answer(header, 'AE', [internal('the message was accepted but could not be processed; send it again')]);
      case 'not-taken':
        log.warn({ ...meta, partner, reason: got.reason, ms }, 'mllp: intake did not take the message; answered AR');
        return answer(header, 'AR', [internal(`not processed: ${got.reason}`)]);
    }
  };

  const onConnection = (socket: net.Socket) => {
    if (closing) {
      socket.destroy();
      return;
    }
    const conn: Connection = { id: ++seq, remote: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`, socket, abort: new AbortController(), queue: Promise.resolve(), queued: 0, open: true };
    connections.add(conn);
    const decoder = new FrameDecoder(maxBytes);
    let frames = 0;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    log.info({ conn: conn.id, remote: conn.remote, tls: !!o.tls }, 'mllp: connection opened');

    const take = (message: Buffer) => {
      frames++;
      conn.queued++;
      if (conn.queued >= MAX_QUEUED_FRAMES) socket.pause();
      conn.queue = conn.queue
        .then(async () => {
          // Received whole, never begun, never acknowledged: the sender sends it again.
          if (!conn.open || closing) return;
          const reply = await handle(message, conn);
          if (!socket.destroyed && socket.writable) socket.write(frame(reply));
        })
        .catch((e: unknown) => log.error({ conn: conn.id, remote: conn.remote, err: (e as Error).message }, 'mllp: a message could not be answered'))
        .finally(() => {
          conn.queued--;
          if (conn.queued < MAX_QUEUED_FRAMES && conn.open && !closing) socket.resume();
        });
    };

    socket.on('data', (chunk: Buffer) => {
      let complete: Buffer[];
      try {
        complete = decoder.push(chunk);
      } catch (e) {
        if (!(e instanceof FrameTooLargeError)) throw e;
        log.warn({ conn: conn.id, remote: conn.remote, limit: e.limit }, 'mllp: message longer than the limit; connection closed, nothing of it written');
        socket.destroy();
        return;
      }
      for (const m of complete) take(m);
    });
    socket.on('error', (e: Error) => log.debug({ conn: conn.id, remote: conn.remote, err: e.message }, 'mllp: connection error'));
    socket.on('close', () => {
      conn.open = false;
      conn.abort.abort();
      const partial = decoder.partialBytes;
      if (partial > 0) log.info({ conn: conn.id, remote: conn.remote, partialBytes: partial }, 'mllp: connection closed mid-message; the partial message is discarded');
      void conn.queue.finally(() => connections.delete(conn));
      log.info({ conn: conn.id, remote: conn.remote, frames, restarted: decoder.restarted }, 'mllp: connection closed');
    });
  };

  const server: net.Server = o.tls ? tls.createServer({ cert: o.tls.cert, key: o.tls.key }, onConnection) : net.createServer(onConnection);
  if (o.tls) {
    server.on('tlsClientError', (e: Error, s: tls.TLSSocket) => log.warn({ remote: `${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'}`, err: e.message }, 'mllp: TLS handshake failed'));
  }
  server.on('error', (e: Error) => log.error({ err: e.message }, 'mllp: listener error'));
  await new Promise<void>((resolve, reject) => {
    const failed = (e: Error) => reject(e);
    server.once('error', failed);
    server.listen(o.port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  log.info({ host, port, tls: !!o.tls, replyTimeoutMs, maxMessageBytes: maxBytes }, 'mllp: listening');

  let closed: Promise<string[]> | undefined;
  const close = () =>
    (closed ??= (async () => {
      const problems: string[] = [];
      closing = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      // Waiting messages stop waiting and answer AE 207 (written, not lost); then each connection ends.
      for (const c of connections) c.abort.abort();
      const drained = Promise.all([...connections].map((c) => c.queue));
      await Promise.race([drained, new Promise((r) => setTimeout(r, CLOSE_GRACE_MS).unref())]);
      for (const c of connections) {
        c.socket.end();
        setTimeout(() => c.socket.destroy(), 500).unref();
      }
      await Promise.race([stopped, new Promise((r) => setTimeout(r, 1000).unref())]);
      for (const c of connections) c.socket.destroy();
      // Messages being written when the shutdown began finish their write (nothing half-written).
      const late = await Promise.race([drained.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), CLOSE_GRACE_MS).unref())]);
      if (late) problems.push('mllp: some messages were still being handled at shutdown');
      return problems;
    })());
  return { host, port, tls: !!o.tls, close };
}

function firstComponent(field: string, separator: string): string {
  const i = field.indexOf(separator);
  return i < 0 ? field : field.slice(0, i);
}

/** A control id for the log: not personal data, but bounded and without control characters. */
function logSafe(id: string | undefined): string | undefined {
  return id === undefined ? undefined : id.replace(/[^\x20-\x7e]/g, '?').slice(0, 64);
}
