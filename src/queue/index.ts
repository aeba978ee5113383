/** Orchestration on BullMQ. Stages never import this folder; it only orders their calls. */
export { connectRedis, redisUrl, warnUnlessNoEviction } from './connection.ts';
export { addMatchFlow, execChunk, execFinalise, execIntake, warmCandidates, type JobContext } from './jobs.ts';
export { QUEUE, queuePrefix, storeKey, type StoreKey, CHUNK_ROWS, intakeJobId, chunkJobId, finaliseJobId, exportJobId, RETRY, retryDelayMs } from './names.ts';
export { startWorkers, type Role, type WorkerSet } from './workers.ts';
export { queueStatus, deploymentsOn, foreignWorkers, workerName, JOB_STATES, type Deployment, type JobState, type QueueStatus, type QueueWorker } from './status.ts';
