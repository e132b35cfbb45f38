/**
 * Worker-thread entry of the data plane (started by DataPlane in index.ts). Everything that
 * touches client or real-server traffic runs here, off the VRRP event loop.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { raiseThreadNice } from '../../../net/native.js';
import { Engine, PROXY_WORKER_NICE, type EngineOptions } from './engine.js';
import type { WorkerMessage } from './protocol.js';

if (!parentPort) throw new Error('lvs/dataplane/worker.js must run as a worker thread');
// Under CPU saturation the VRRP thread (nice 0) comes first: a busy data plane must never delay
// an advert or a takeover. PROXY_WORKER_NICE in engine.ts says by how much.
raiseThreadNice(PROXY_WORKER_NICE);
const port = parentPort;
const engine = new Engine((m: WorkerMessage) => port.postMessage(m), (workerData ?? {}) as EngineOptions);
port.on('message', (m: unknown) => engine.handle(m));
